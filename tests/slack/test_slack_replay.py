"""Replayed Slack requests act once: the same signed bytes, resent within Slack's 5-minute
signature window, are acked and change nothing, on any replica and after a restart.

Each test sends real signed bytes through ``POST /slack/events``; a replay re-sends exactly the
same body with the same timestamp and signature.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_driver import FORM
from slack_rig import Rig, running
from sqlalchemy import func, select, text

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, InboundDeliveryRow, VoteRow

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
"""


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY) as value:
        yield value


@pytest.fixture
async def replica_db(db: Database) -> AsyncIterator[Database]:
    """A second connection pool on the same database: another replica's view of it."""
    other = Database(db.url)
    yield other
    await other.dispose()


async def events(db: Database, action: str) -> list[AuditEventRow]:
    async with db.read() as session:
        query = select(AuditEventRow).where(AuditEventRow.action == action)
        return list((await session.execute(query)).scalars())


async def send(rig: Rig, body: str, timestamp: int, times: int = 1) -> list[int]:
    statuses = []
    for _ in range(times):
        response = await rig.driver.post(body, FORM, timestamp=timestamp)
        statuses.append(response.status)
    await rig.settle()
    return statuses


async def test_the_same_signed_slash_command_three_times_files_one_request(rig: Rig) -> None:
    body = rig.driver.slash_body(BOB[0], "activate staging-deploy for 30m reason deploy", "once")
    assert await send(rig, body, int(time.time()), times=3) == [200, 200, 200]
    assert [r.state for r in await rig.requests()] == ["active"]
    assert [c.email for c in rig.provider.actions("grant")] == [BOB[1]]
    assert len(rig.slack.responses("once")) == 1, "one answer, to the one request"
    replays = await events(rig.db, "inbound.replayed")
    assert [(e.subject, e.outcome) for e in replays] == [("command", "ignored")] * 2
    # The replay is audited under bob's email once his identity is stored, else under his
    # Slack id: a replay acked before the first delivery's work has looked him up.
    assert {e.actor for e in replays} <= {BOB[1], f"slack:{BOB[0]}"}


async def test_a_replayed_click_acts_once(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h reason restore")
    await rig.settle()
    (request,) = await rig.requests()
    body, name = rig.driver.click_body(ALICE[0], "pim_approve", request.id)
    assert await send(rig, body, int(time.time()), times=2) == [200, 200]
    async with rig.db.read() as session:
        votes = (await session.execute(select(func.count()).select_from(VoteRow))).scalar_one()
    assert votes == 1
    assert [c.email for c in rig.provider.actions("grant")] == [BOB[1]]
    assert len(rig.slack.responses(name)) == 1, "the replay is not answered again"
    refused = [e for e in await events(rig.db, "approve") if e.outcome == "refused"]
    assert refused == []
    assert [e.subject for e in await events(rig.db, "inbound.replayed")] == ["block_actions"]


async def test_a_replayed_modal_submit_files_one_request(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], "activate")
    await rig.settle()
    view = rig.slack.calls_to("views.open")[-1].args["view"]
    values = {"role": "staging-deploy", "duration": "30m", "reason": "deploy"}
    body = rig.driver.submit_body(BOB[0], view, values)
    assert await send(rig, body, int(time.time()), times=2) == [200, 200]
    assert len(await rig.requests()) == 1
    assert [e.subject for e in await events(rig.db, "inbound.replayed")] == ["view_submission"]


async def test_a_replay_sent_to_another_replica_is_still_a_replay(
    rig: Rig, replica_db: Database, fake_slack: FakeSlack
) -> None:
    body = rig.driver.slash_body(BOB[0], "activate staging-deploy for 30m reason deploy", "both")
    timestamp = int(time.time())
    async with running(replica_db, fake_slack, POLICY) as other:
        await send(rig, body, timestamp)
        await send(other, body, timestamp)
        await send(rig, body, timestamp)
        await send(other, body, timestamp)
    assert len(await rig.requests()) == 1
    assert len(rig.provider.actions("grant")) + len(other.provider.actions("grant")) == 1
    assert len(fake_slack.responses("both")) == 1
    assert len(await events(rig.db, "inbound.replayed")) == 3


async def test_a_replay_after_a_restart_is_still_a_replay(
    db: Database, fake_slack: FakeSlack
) -> None:
    timestamp = int(time.time())
    async with running(db, fake_slack, POLICY) as before:
        body = before.driver.slash_body(
            BOB[0], "activate staging-deploy for 30m reason deploy", "restart"
        )
        await send(before, body, timestamp)
    async with running(db, fake_slack, POLICY) as after:
        await send(after, body, timestamp)
        assert len(await after.requests()) == 1
    assert len(fake_slack.responses("restart")) == 1


async def test_slack_retries_of_an_event_are_recorded_as_such(rig: Rig) -> None:
    await rig.driver.home_opened(BOB[0], "Ev0RETRY1")
    await rig.driver.home_opened(BOB[0], "Ev0RETRY1", retry=1)
    await rig.driver.home_opened(BOB[0], "Ev0RETRY1", retry=2)
    await rig.settle()
    assert len(rig.slack.calls_to("views.publish")) == 1
    retries = await events(rig.db, "inbound.replayed")
    assert [(e.subject, e.detail.get("slack_retry")) for e in retries] == [
        ("event", "1"), ("event", "2")
    ]


async def deliveries(db: Database) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(InboundDeliveryRow)
        return int((await session.execute(query)).scalar_one())


async def test_deliveries_are_forgotten_once_slack_would_refuse_the_bytes(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], "status")
    await rig.driver.slash(BOB[0], "roles")
    await rig.settle()
    assert await deliveries(rig.db) == 2
    rig.clock.advance(timedelta(minutes=11))
    await rig.driver.slash(BOB[0], "status")
    await rig.settle()
    assert await deliveries(rig.db) == 1, "only the new request is still remembered"


async def test_a_request_that_cannot_be_recorded_is_not_acted_on(rig: Rig) -> None:
    async with rig.db.transaction() as session:
        await session.execute(text("DROP TABLE inbound_deliveries"))
    body = rig.driver.slash_body(BOB[0], "activate staging-deploy for 30m reason x", "down")
    assert await send(rig, body, int(time.time())) == [500]
    assert await rig.requests() == []


async def test_a_signed_request_carrying_no_id_of_its_own_is_still_acted_on_once(
        rig: Rig) -> None:
    """Slack gives every request pimbot handles an id (``trigger_id``, ``action_ts``,
    ``event_id``); one without any is keyed by its signed bytes and timestamp, so the same
    bytes resent are a replay all the same."""
    from urllib.parse import parse_qsl, urlencode

    body = rig.driver.slash_body(BOB[0], "activate staging-deploy for 30m reason deploy", "bare")
    fields = [(k, v) for k, v in parse_qsl(body) if k != "trigger_id"]
    assert len(fields) < len(parse_qsl(body)), "the fixture's command carried a trigger_id"
    bare = urlencode(fields)
    assert await send(rig, bare, int(time.time()), times=2) == [200, 200]
    assert [r.state for r in await rig.requests()] == ["active"]
    assert [c.email for c in rig.provider.actions("grant")] == [BOB[1]]
    assert [e.subject for e in await events(rig.db, "inbound.replayed")] == ["command"]
