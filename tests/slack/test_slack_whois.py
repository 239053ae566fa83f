"""``/pim whois ROLE`` over Slack: by default only admins, auditors and the role's approvers
see who holds a role; anyone else gets a one-line refusal, audited. ``whois: everyone`` in
the policy opens it to all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_slack import ALICE, BOB, CAROL, FakeSlack
from slack_rig import Rig, running
from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow

POLICY = """
admins: [sec-lead@example.com]
auditors: [audit@example.com]
groups:
  dba-leads: [alice@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    provider: demo
    require_justification: false
    approval: {required: true, approvers: [group:dba-leads]}
  staging-deploy:
    provider: demo
    require_justification: false
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
  - {user: bob@example.com, role: staging-deploy, type: eligible}
  - {user: carol@example.com, role: staging-deploy, type: eligible}
"""
AUDITOR = ("U0AUDIT001", "audit@example.com", "Audit")


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    fake_slack.add_user(*AUDITOR)
    async with running(db, fake_slack, POLICY) as value:
        yield value


async def whois(rig: Rig, user_id: str, role: str) -> str:
    _, name = await rig.driver.slash(user_id, f"whois {role}")
    await rig.settle()
    return str(rig.reply_to(name)["text"])


async def holding(rig: Rig) -> None:
    """Bob holds staging-deploy (no approval needed) and is eligible for prod-db-admin."""
    await rig.driver.slash(BOB[0], "activate staging-deploy for 1h")
    await rig.settle()


async def test_only_admins_auditors_and_the_roles_approvers_see_its_holders(rig: Rig) -> None:
    await holding(rig)
    for who in (ALICE, AUDITOR):
        assert BOB[1] in await whois(rig, who[0], "prod-db-admin"), who
    assert BOB[1] in await whois(rig, AUDITOR[0], "staging-deploy")

    for who, role in ((CAROL, "prod-db-admin"), (CAROL, "staging-deploy"),
                      (ALICE, "staging-deploy"), (BOB, "staging-deploy")):
        answer = await whois(rig, who[0], role)
        assert "Only admins, auditors and the approvers" in answer, (who, role, answer)
        assert BOB[1] not in answer and "\n" not in answer
    async with rig.db.read() as session:
        refused = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "whois.refused"))).scalars().all()
    assert [(e.actor, e.subject, e.outcome) for e in refused] == [
        (CAROL[1], "prod-db-admin", "refused"), (CAROL[1], "staging-deploy", "refused"),
        (ALICE[1], "staging-deploy", "refused"), (BOB[1], "staging-deploy", "refused")]


async def test_whois_everyone_in_the_policy_lets_anyone_ask(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    async with running(sqlite_db, fake_slack, "whois: everyone\n" + POLICY) as rig:
        await holding(rig)
        assert BOB[1] in await whois(rig, CAROL[0], "staging-deploy")
