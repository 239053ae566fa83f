"""Socket Mode: with SLACK_APP_TOKEN the same handlers run over Slack's WebSocket."""

from __future__ import annotations

import asyncio
import copy

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_slack import ALICE, BOB, FakeSlack, fixture
from slack_driver import FORM, SlackDriver
from sqlalchemy import select

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.workflow.core import PimCore
from pimbot_slack.app import SlackAdapter

POLICY = """
groups:
  dba-leads: [alice@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    provider: demo
    max_duration: 4h
    approval: {required: true, approvers: [group:dba-leads]}
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""


async def test_slash_command_over_socket_mode(sqlite_db: Database, fake_slack: FakeSlack) -> None:
    policy = parse_policy(POLICY)
    clock = FakeClock()
    await apply_policy(sqlite_db, policy, clock)
    core = PimCore(sqlite_db, policy, {"demo": RecordingProvider()}, clock)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_APP_TOKEN": "xapp-test",
        "PIMBOT_SLACK_API_URL": fake_slack.api_url,
    }
    adapter = SlackAdapter.from_env(env, core)
    await adapter.start()
    try:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), timeout=10)
        envelope = copy.deepcopy(fixture("socket_mode_envelope.json")[1])
        envelope["payload"].update(
            user_id=BOB[0],
            text="activate prod-db-admin for 1h reason restore",
            response_url=fake_slack.response_url("sock"),
        )
        await fake_slack.socket_send(envelope)
        ack = await asyncio.wait_for(fake_slack.socket_ack(envelope["envelope_id"]), timeout=10)
        assert ack["envelope_id"] == envelope["envelope_id"]
        await adapter.idle()
        await core.drain()
        assert fake_slack.responses("sock")[0].args["response_type"] == "ephemeral"
        assert len(fake_slack.posts_to(ALICE[0])) == 1
        async with sqlite_db.read() as session:
            states = [r.state for r in (await session.execute(select(RequestRow))).scalars()]
        assert states == ["pending_approval"]
    finally:
        await adapter.stop()


async def test_http_is_refused_without_a_signing_secret(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    policy = parse_policy(POLICY)
    core = PimCore(sqlite_db, policy, {"demo": RecordingProvider()}, FakeClock())
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"}
    adapter = SlackAdapter.from_env({**env, "PIMBOT_SLACK_API_URL": fake_slack.api_url}, core)
    app = web.Application()
    adapter.mount(app)
    async with TestClient(TestServer(app)) as client:
        driver = SlackDriver(client, fake_slack)
        body = driver.slash_body(BOB[0], "roles", "x")
        response = await driver.post(body, FORM, secret="")
        assert response.status == 401
    assert fake_slack.calls == []
