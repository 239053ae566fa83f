"""Requests from outside the workspace: another workspace, people of another organisation
(Slack Connect) and guests (unless the policy allows guests) are refused, audited, and told
so in one line; nothing else happens.

The fake Slack's workspace is ``T0PIMTEAM1`` (``auth_test_ok.json``); signed requests go
through the real ``POST /slack/events``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_driver import FORM
from slack_rig import Rig, running
from sqlalchemy import func, select

from pimbot.domain.errors import PimError
from pimbot.policy import parse_policy
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, VoteRow
from pimbot.testing.fakes import FakeClock
from pimbot.workflow.core import PimCore
from pimbot_slack.app import SlackAdapter

POLICY = """
groups:
  dba-leads: [alice@example.com]
providers:
  demo: {type: noop}
roles:
  staging-deploy:
    provider: demo
    max_duration: 4h
  prod-db-admin:
    provider: demo
    max_duration: 4h
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1}
assignments:
  - {user: bob@example.com, role: staging-deploy, type: eligible}
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
  - {user: dana@example.com, role: staging-deploy, type: eligible}
"""
GUESTS_ALLOWED = POLICY + "slack: {allow_guests: true}\n"
OTHER_TEAM = "T0OTHERWS9"
DANA = ("U0DANA0001", "dana@example.com", "Dana Guest")
ACTIVATE = "activate staging-deploy for 30m reason deploy"


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY) as value:
        yield value


async def refusals(db: Database) -> list[AuditEventRow]:
    async with db.read() as session:
        query = select(AuditEventRow).where(AuditEventRow.action == "inbound.refused")
        return list((await session.execute(query)).scalars())


def one_line(answer: dict[str, Any]) -> str:
    text = str(answer["text"])
    assert "\n" not in text and "Traceback" not in text, text
    return text


def slash_from(rig: Rig, user_id: str, name: str, **fields: str) -> str:
    body = dict(parse_qsl(rig.driver.slash_body(user_id, ACTIVATE, name)))
    return urlencode({**body, **fields})


def reshaped(body: str, change: dict[str, Any]) -> str:
    payload = json.loads(dict(parse_qsl(body))["payload"])
    payload.update(change)
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


async def test_a_slash_command_from_another_workspace_is_refused(rig: Rig) -> None:
    body = slash_from(rig, BOB[0], "other", team_id=OTHER_TEAM, team_domain="elsewhere")
    response = await rig.driver.post(body, FORM)
    assert response.status == 200
    await rig.settle()
    assert "another workspace" in one_line(rig.reply_to("other"))
    assert await rig.requests() == []
    assert rig.slack.calls_to("users.info") == [], "nobody of another workspace is looked up"
    (event,) = await refusals(rig.db)
    assert (event.actor, event.subject, event.outcome) == (f"slack:{BOB[0]}", "command", "refused")
    assert event.detail["reason"] == "other_workspace_refused"
    assert event.detail["team"] == OTHER_TEAM


async def test_a_click_from_another_workspace_is_refused(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h reason restore")
    await rig.settle()
    (request,) = await rig.requests()
    body, name = rig.driver.click_body(ALICE[0], "pim_approve", request.id)
    forged = reshaped(body, {"team": {"id": OTHER_TEAM, "domain": "elsewhere"}})
    assert (await rig.driver.post(forged, FORM)).status == 200
    await rig.settle()
    assert "another workspace" in one_line(rig.reply_to(name))
    async with rig.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(VoteRow))).scalar_one() == 0
    assert [r.state for r in await rig.requests()] == ["pending_approval"]
    assert [e.subject for e in await refusals(rig.db)] == ["pim_approve"]


async def test_an_event_from_another_workspace_publishes_nothing(rig: Rig) -> None:
    response = await rig.driver.home_opened(BOB[0], "Ev0OTHER01", team_id=OTHER_TEAM)
    assert response.status == 200
    await rig.settle()
    assert rig.slack.calls_to("views.publish") == []
    assert [e.subject for e in await refusals(rig.db)] == ["app_home"]


@pytest.mark.parametrize(
    "traits",
    [{"team_id": "T0ELSEWHERE"}, {"stranger": True}],
    ids=["home-team-elsewhere", "is_stranger"],
)
async def test_a_person_of_another_organisation_is_refused(
    rig: Rig, traits: dict[str, Any]
) -> None:
    """Slack Connect: a shared channel brings people of another company, whose profile can
    carry any email, even that of an eligible person here."""
    rig.slack.add_user("U0EXTERN01", BOB[1], "Bob Lookalike", **traits)
    response, name = await rig.driver.slash("U0EXTERN01", ACTIVATE)
    assert response.status == 200
    await rig.settle()
    assert "outside" in one_line(rig.reply_to(name))
    assert await rig.requests() == []
    (event,) = await refusals(rig.db)
    assert event.actor == "slack:U0EXTERN01", "an external person's claimed email is not trusted"
    assert event.detail["reason"] == "external_refused"


@pytest.mark.parametrize("kind", ["restricted", "ultra_restricted"])
async def test_guests_are_refused_by_default(rig: Rig, kind: str) -> None:
    rig.slack.add_user(DANA[0], DANA[1], DANA[2], **{kind: True})
    response, name = await rig.driver.slash(DANA[0], ACTIVATE)
    assert response.status == 200
    await rig.settle()
    assert "Guest" in one_line(rig.reply_to(name))
    assert await rig.requests() == []
    (event,) = await refusals(rig.db)
    assert (event.actor, event.detail["reason"]) == (DANA[1], "guest_refused")


async def test_guests_may_act_when_the_policy_allows_them(
    db: Database, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user(DANA[0], DANA[1], DANA[2], restricted=True)
    async with running(db, fake_slack, GUESTS_ALLOWED) as rig:
        await rig.driver.slash(DANA[0], ACTIVATE)
        await rig.settle()
        assert [(r.email, r.state) for r in await rig.requests()] == [(DANA[1], "active")]
        assert await refusals(rig.db) == []


async def test_members_pass(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], ACTIVATE)
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["active"]
    assert await refusals(rig.db) == []


def adapter_for(db: Database, fake: FakeSlack, **env: str) -> SlackAdapter:
    core = PimCore(db, parse_policy(POLICY), {}, FakeClock())
    settings = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s",
        "PIMBOT_SLACK_API_URL": fake.api_url,
        **env,
    }
    return SlackAdapter.from_env(settings, core)


async def test_the_workspace_is_learned_from_auth_test_at_start(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    adapter = adapter_for(sqlite_db, fake_slack)
    await adapter.start()
    assert len(fake_slack.calls_to("auth.test")) == 1
    served = await adapter.workspace.get()
    assert (served.team_id, served.org_wide) == ("T0PIMTEAM1", False)
    await adapter.stop()


async def test_a_token_of_another_workspace_than_the_setting_does_not_start(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    adapter = adapter_for(sqlite_db, fake_slack, PIMBOT_SLACK_TEAM_ID=OTHER_TEAM)
    with pytest.raises(PimError) as raised:
        await adapter.start()
    assert OTHER_TEAM in str(raised.value) and "T0PIMTEAM1" in str(raised.value)


async def test_an_org_wide_install_serves_its_organisation_only(
    db: Database, fake_slack: FakeSlack
) -> None:
    """Enterprise Grid, installed org-wide: any workspace of the organisation is served
    (team ids differ), people and requests of another organisation are not."""
    org = "E0PIMORG01"
    fake_slack.auth.update(enterprise_id=org, is_enterprise_install=True)
    fake_slack.add_user("U0SIBLING1", BOB[1], "Bob", team_id="T0SIBLING1", enterprise_id=org)
    fake_slack.add_user("U0OUTSIDE1", BOB[1], "Bob Lookalike", team_id="T0SIBLING1")
    async with running(db, fake_slack, POLICY) as rig:
        for user_id, name, enterprise in [("U0SIBLING1", "member", org),
                                          ("U0OUTSIDE1", "outsider", org),
                                          ("U0SIBLING1", "other-org", "E0OTHERORG")]:
            body = slash_from(rig, user_id, name, team_id="T0SIBLING1", enterprise_id=enterprise)
            await rig.driver.post(body, FORM, timestamp=int(time.time()))
            await rig.settle()
        assert [(r.email, r.state) for r in await rig.requests()] == [(BOB[1], "active")]
        assert "outside" in one_line(rig.reply_to("outsider"))
        assert "another workspace" in one_line(rig.reply_to("other-org"))
