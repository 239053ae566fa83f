"""A button pimbot never sends (forged, or from a card of an older pimbot), pressed in Slack.

Through the real ``POST /slack/events`` route with signed requests: the presser is told so in
an ephemeral answer, nothing changes, nothing is audited as a decision, and a log line says so.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_rig import Rig, running
from sqlalchemy import func, select
from test_slack_http import POLICY, button_values

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY) as value:
        yield value


async def audit_count(rig: Rig) -> int:
    async with rig.db.read() as session:
        return int((await session.execute(select(func.count(AuditEventRow.seq)))).scalar_one())


async def pending_request(rig: Rig) -> str:
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h reason restore backup")
    await rig.settle()
    return button_values(rig.slack.posts_to(ALICE[0])[0].args["blocks"])["pim_approve"]


def said(answer: dict[str, Any]) -> str:
    return str(answer["text"])


@pytest.mark.parametrize("action_id", ["pim_approve_all", "approve", "pim_approve_x:1"])
async def test_an_unknown_button_is_answered_and_changes_nothing(
    rig: Rig, action_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = await pending_request(rig)
    before = await audit_count(rig)
    with caplog.at_level(logging.WARNING, logger="pimbot_slack"):
        response, name = await rig.driver.click(ALICE[0], action_id, request_id)
        assert response.status == 200
        await rig.settle()
    answer = rig.reply_to(name)
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "That button is not one pimbot knows" in said(answer)
    assert "try: /pim status" in said(answer)
    assert [r.state for r in await rig.requests()] == ["pending_approval"]
    assert rig.provider.actions("grant") == []
    assert await audit_count(rig) == before, "no decision (nor refusal) is audited"
    logged = [r for r in caplog.records if "does not know" in r.getMessage()]
    assert len(logged) == 1 and logged[0].__dict__["action_id"] == action_id


async def test_an_unknown_button_on_the_app_home_is_answered_by_dm(rig: Rig) -> None:
    dm_before = len(rig.slack.posts_to(BOB[0]))
    response, _ = await rig.driver.click(BOB[0], "pim_launch_rockets", "x", home=True)
    assert response.status == 200
    await rig.settle()
    posts = rig.slack.posts_to(BOB[0])[dm_before:]
    assert any("not one pimbot knows" in str(p.args) for p in posts), posts
