"""One person is one email: a request made in Teams is approved in Slack or the console, and
a request made in Slack is approved in Teams; the requester is told where they asked, and
every copy of the card on every platform is updated when it is decided."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB, CAROL
from teams_rig import Rig, buttons, card_text, running

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_console.app import ConsoleSession
from pimbot_console.gateway import ConsoleGateway, Screen

SLACK_TESTS = str(Path(__file__).resolve().parents[1] / "slack")
if SLACK_TESTS not in sys.path:
    sys.path.insert(0, SLACK_TESTS)

from fake_slack import FakeSlack  # noqa: E402
from slack_driver import SIGNING_SECRET, SlackDriver  # noqa: E402

from pimbot_slack.app import SlackAdapter  # noqa: E402

ACTIVATE = "activate prod-db-admin for 1h reason restore backup"
SLACK_IDS = {ALICE.email: "U0ALICE001", BOB.email: "U0BOB00001", CAROL.email: "U0CAROL001"}


@dataclass
class Both:
    teams: Rig
    slack: FakeSlack
    slack_adapter: SlackAdapter
    slack_driver: SlackDriver
    core: PimCore

    async def settle(self) -> None:
        for _ in range(3):
            await self.slack_adapter.idle()
            await self.teams.settle()

    def slack_dm_blocks(self, email: str) -> list[list[dict[str, object]]]:
        """The blocks of every message DMed to the person on Slack, as last updated."""
        by_ts: dict[str, list[dict[str, object]]] = {}
        for call in self.slack.calls:
            if call.method == "chat.postMessage" and call.args["channel"] == SLACK_IDS[email]:
                by_ts[str(call.answer["ts"])] = call.args["blocks"]
            elif call.method == "chat.update" and str(call.args["ts"]) in by_ts:
                by_ts[str(call.args["ts"])] = call.args["blocks"]
        return list(by_ts.values())


def core_for(db: Database, clock: FakeClock, provider: RecordingProvider) -> PimCore:
    policy = parse_policy(POLICY)
    mfa = MfaService(db, SecretBox(secrets.token_bytes(32)), clock)
    return PimCore(db, policy, {"demo": provider}, clock, mfa=mfa)


@asynccontextmanager
async def teams_and_slack(db: Database, fake_teams: FakeBotFramework,
                          slack_people: dict[str, str]) -> AsyncIterator[Both]:
    clock, provider = FakeClock(), RecordingProvider()
    await apply_policy(db, parse_policy(POLICY), clock)
    core = core_for(db, clock, provider)
    slack = FakeSlack({SLACK_IDS[email]: (email, name) for email, name in slack_people.items()})
    await slack.start()
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "PIMBOT_SLACK_API_URL": slack.api_url}
    slack_adapter = SlackAdapter.from_env(env, core)
    app = web.Application()
    slack_adapter.mount(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        async with running(db, fake_teams, POLICY, core=core, clock=clock,
                           provider=provider) as rig:
            yield Both(rig, slack, slack_adapter, SlackDriver(client, slack), core)
    finally:
        await slack_adapter.stop()
        await client.close()
        await slack.close()


async def test_asked_in_teams_approved_in_slack(db: Database,
                                               fake_teams: FakeBotFramework) -> None:
    async with teams_and_slack(db, fake_teams, {ALICE.email: "Alice Approver",
                                                CAROL.email: "Carol Approver"}) as both:
        await both.teams.introduce(BOB, CAROL)  # alice is on Slack only; carol on both
        told = await both.teams.say(BOB, ACTIVATE)
        assert any("waiting for approval" in t for t in told)
        (request,) = await both.teams.requests()
        assert both.slack_dm_blocks(ALICE.email), "alice's card went to Slack"
        _, carol_card = await both.teams.latest_seen(CAROL)  # to Teams, where bob asked
        assert set(buttons(carol_card)) == {"Approve", "Deny"}

        await both.slack_driver.click(SLACK_IDS[ALICE.email], "pim_approve", request.id)
        await both.settle()
        assert [(c.email, c.role) for c in both.teams.provider.actions("grant")] == \
            [(BOB.email, "prod-db-admin")]
        _, mine = both.teams.latest_card(BOB)
        assert "Your activation of prod-db-admin: active" in card_text(mine), "told in Teams"
        _, carol_card = both.teams.latest_card(CAROL)
        assert "actions" not in carol_card and "Approved by alice@example.com" in \
            card_text(carol_card), "the Teams copy is updated"
        (alice_blocks,) = both.slack_dm_blocks(ALICE.email)
        assert all(b["type"] != "actions" for b in alice_blocks), "the Slack copy too"


async def test_asked_in_slack_approved_in_teams(db: Database,
                                               fake_teams: FakeBotFramework) -> None:
    async with teams_and_slack(db, fake_teams, {BOB.email: "Bob Requester"}) as both:
        await both.teams.introduce(ALICE, CAROL)  # the approvers are on Teams only
        await both.slack_driver.slash(SLACK_IDS[BOB.email], ACTIVATE)
        await both.settle()
        (request,) = await both.teams.requests()
        card_id, card = await both.teams.latest_seen(ALICE)
        verb, data = buttons(card)["Approve"]
        answer = await both.teams.press(ALICE, verb, data, card_id)
        assert f"Approved request {request.id}" in card_text(answer["value"])
        await both.settle()
        assert [(c.email, c.role) for c in both.teams.provider.actions("grant")] == \
            [(BOB.email, "prod-db-admin")]
        told = " ".join(str(blocks) for blocks in both.slack_dm_blocks(BOB.email))
        assert "Your activation of prod-db-admin: active" in told, "bob told on Slack"
        _, carol_card = both.teams.latest_card(CAROL)
        assert "actions" not in carol_card


async def test_asked_in_teams_approved_in_the_console(db: Database,
                                                     fake_teams: FakeBotFramework) -> None:
    clock, provider = FakeClock(), RecordingProvider()
    await apply_policy(db, parse_policy(POLICY), clock)
    core = core_for(db, clock, provider)
    screen = Screen(write=lambda _text: None)
    async with running(db, fake_teams, POLICY, core=core, clock=clock,
                       provider=provider) as rig:
        core.add_gateway(ConsoleGateway(screen))  # after Teams: Teams people get Teams cards
        await rig.introduce(BOB, ALICE, CAROL)
        await rig.say(BOB, ACTIVATE)
        (request,) = await rig.requests()
        await ConsoleSession(core, screen, ALICE.email).handle_line(f"approve {request.id}")
        await rig.settle()
        assert [(c.email, c.role) for c in provider.actions("grant")] == \
            [(BOB.email, "prod-db-admin")]
        _, mine = rig.latest_card(BOB)
        assert "Your activation of prod-db-admin: active" in card_text(mine)
        for approver in (ALICE, CAROL):
            _, card = rig.latest_card(approver)
            assert "actions" not in card and "Approved by alice@example.com" in card_text(card)
