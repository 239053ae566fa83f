"""Naming people over Slack: a display name (which each user sets for themselves) never picks
who is assigned, unassigned or reset; pimbot lists who has that name, by mention and email."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fake_slack import BOB, FakeSlack
from slack_rig import Rig, running
from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, AuditEventRow

POLICY = """
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: demo
    max_duration: 4h
    require_justification: false
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""
LEAD = ("U0LEAD0001", "sec-lead@example.com", "Security Lead")
DANA = ("U0DANA0001", "dana@example.com", "Dana Lee")
MALLORY = ("U0MALLORY1", "mallory@example.com", "Dana Lee")  # chose Dana's display name


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    for user in (LEAD, DANA, MALLORY):
        fake_slack.add_user(*user)
    async with running(db, fake_slack, POLICY) as value:
        yield value


async def say(rig: Rig, user_id: str, text: str) -> dict[str, object]:
    _, name = await rig.driver.slash(user_id, text)
    await rig.settle()
    return rig.reply_to(name)


async def assigned(rig: Rig) -> set[str]:
    async with rig.db.read() as session:
        rows = await session.execute(select(AssignmentRow.email).where(
            AssignmentRow.role == "prod-db-admin", AssignmentRow.removed_at.is_(None)))
        return set(rows.scalars())


async def test_a_display_name_lists_who_has_it_and_changes_nothing(rig: Rig) -> None:
    await say(rig, MALLORY[0], "roles")  # pimbot has seen her, with her chosen display name

    answer = await say(rig, LEAD[0], 'assign "Dana Lee" prod-db-admin eligible')
    shown = json.dumps(answer)
    assert "mallory@example.com" in shown and f"<@{MALLORY[0]}>" in shown, shown
    assert "mention or email" in str(answer["text"]) and "Nothing was changed" in shown
    assert await assigned(rig) == {BOB[1]}, "nobody was made eligible"

    await say(rig, DANA[0], "roles")  # the real Dana Lee has used pimbot too
    answer = await say(rig, LEAD[0], 'assign "dana lee" prod-db-admin eligible')
    shown = json.dumps(answer)
    for user in (DANA, MALLORY):
        assert user[1] in shown and f"<@{user[0]}>" in shown, shown
    assert await assigned(rig) == {BOB[1]}

    answer = await say(rig, LEAD[0], f"assign <@{DANA[0]}|dana> prod-db-admin eligible")
    assert await assigned(rig) == {BOB[1], DANA[1]}, answer

    async with rig.db.read() as session:
        rejected = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.actor == LEAD[1], AuditEventRow.action == "command.rejected"))).scalars()
        assert [e.detail["error"] for e in rejected] == ["unknown_user", "unknown_user"]


async def test_unassign_and_mfa_reset_by_display_name_change_nothing(rig: Rig) -> None:
    await say(rig, BOB[0], "roles")  # Bob Requester
    answer = await say(rig, LEAD[0], 'unassign "Bob Requester" prod-db-admin')
    assert BOB[1] in json.dumps(answer) and "Nothing was changed" in json.dumps(answer)
    assert await assigned(rig) == {BOB[1]}
    answer = await say(rig, LEAD[0], 'mfa reset "Bob Requester"')
    assert BOB[1] in json.dumps(answer) and "Nothing was changed" in json.dumps(answer)


async def test_a_non_admin_naming_someone_is_refused_before_any_lookup(rig: Rig) -> None:
    await say(rig, MALLORY[0], "roles")
    answer = await say(rig, BOB[0], 'assign "Dana Lee" prod-db-admin eligible')
    assert "Only admins" in str(answer["text"])
    assert MALLORY[1] not in json.dumps(answer), "who has a name is not told to non-admins"
