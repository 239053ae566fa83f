"""The outbound side: proactive sends, channel posts, retries on 429/412/502/504 with
``Retry-After``, per-conversation pacing, and Unreachable for people pimbot cannot reach."""

from __future__ import annotations

import aiohttp
import pytest
from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB, CHANNEL
from teams_rig import card_text, running

from pimbot.ports import SentMessage, Unreachable
from pimbot.store.database import Database
from pimbot.ui.cards import ActionId, Button, Card
from pimbot_teams.connector import BotConnector, ConnectorError
from pimbot_teams.limits import ConversationLimiter
from pimbot_teams.settings import TeamsSettings

CARD = Card(title="Hello", text="a [link](https://evil.example) and *stars*",
            actions=(Button("Approve", ActionId.APPROVE, "req1"),))


async def test_a_card_reaches_an_installed_person_and_is_updated_in_place(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        gateway = rig.adapter.gateway
        assert not await gateway.can_reach(ALICE.email)
        await rig.introduce(ALICE)
        assert await gateway.can_reach(ALICE.email)
        sent = await gateway.send_to_user(ALICE.email, CARD)
        assert sent.ref["conversation"] == ALICE.chat and sent.ref["user"] == ALICE.user_id
        _, card = rig.latest_card(ALICE)
        assert card["body"][1] == {"type": "RichTextBlock", "inlines": [
            {"type": "TextRun", "text": "a [link](https://evil.example) and *stars*"}]}, \
            "text is a TextRun, which Adaptive Cards never read as markdown"
        assert all("evil.example" not in e.get("text", "") for e in card["body"]
                   if e["type"] == "TextBlock")
        await gateway.update(sent, Card(title="Decided"))
        _, card = rig.latest_card(ALICE)
        assert card_text(card).startswith("Decided") and "actions" not in card
        rig.check_cards()


async def test_429_412_502_504_are_retried_with_retry_after(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        await rig.introduce(ALICE)
        fake_teams.fail(f"POST /teams/v3/conversations/{ALICE.chat}/activities", 429,
                        headers={"Retry-After": "0"})
        for status in (412, 502, 504):
            fake_teams.fail(f"POST /teams/v3/conversations/{ALICE.chat}/activities", status)
        mark = len(fake_teams.calls)
        await rig.adapter.gateway.send_to_user(ALICE.email, CARD)
        tries = [c.status for c in fake_teams.calls[mark:] if "/activities" in c.path]
        assert tries == [429, 412, 502, 504, 201]


async def test_a_500_is_not_retried_and_an_uninstalled_person_is_unreachable(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        await rig.introduce(ALICE)
        route = f"POST /teams/v3/conversations/{ALICE.chat}/activities"
        fake_teams.fail(route, 500)
        with pytest.raises(ConnectorError):
            await rig.adapter.gateway.send_to_user(ALICE.email, CARD)
        fake_teams.fail(route, 403)
        with pytest.raises(Unreachable):
            await rig.adapter.gateway.send_to_user(ALICE.email, CARD)
        with pytest.raises(Unreachable):
            await rig.adapter.gateway.send_to_user(BOB.email, CARD)  # never installed


async def test_a_channel_post_goes_through_the_teams_service_url(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        with pytest.raises(Unreachable):
            await rig.adapter.gateway.send_to_channel(CHANNEL, CARD)
        await rig.driver.post(rig.driver.team_added(ALICE))
        await rig.settle()
        sent = await rig.adapter.gateway.send_to_channel(CHANNEL, CARD)
        (create,) = [c for c in fake_teams.calls if c.path == "/teams/v3/conversations"]
        assert create.body["channelData"]["channel"]["id"] == CHANNEL
        assert create.body["isGroup"] is True and create.body["tenantId"]
        assert sent.ref["conversation"].startswith(CHANNEL + ";messageid=")
        await rig.adapter.gateway.update(sent, Card(title="Decided"))
        assert [c.method for c in fake_teams.calls if sent.ref["activity"] in c.path] == ["PUT"]


async def test_one_token_serves_many_calls(sqlite_db: Database,
                                           fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        await rig.introduce(ALICE, BOB)
        for _ in range(3):
            await rig.adapter.gateway.send_to_user(ALICE.email, CARD)
        tokens = [c for c in fake_teams.calls if c.path.endswith("/oauth2/v2.0/token")]
        assert len(tokens) == 1
        assert "client_credentials" in tokens[0].body and "test-secret" in tokens[0].body
        assert "scope=https%3A%2F%2Fapi.botframework.com%2F.default" in tokens[0].body


async def test_sends_to_one_conversation_are_paced() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = ConversationLimiter(clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        await limiter.wait("a:chat")
    assert slept == [], "7 in a second are allowed"
    await limiter.wait("a:chat")
    assert slept == [pytest.approx(1.0)], "the 8th waits for the first second to pass"
    await limiter.wait("a:other")
    assert len(slept) == 1, "another conversation has its own windows"
    for _ in range(60 - 8):
        await limiter.wait("a:chat")
    before = now[0]
    await limiter.wait("a:chat")
    assert now[0] - before > 1.0 and now[0] >= 30.0, "no more than 60 in 30 seconds"


async def test_the_connector_gives_up_after_its_attempts(fake_teams: FakeBotFramework) -> None:
    settings = TeamsSettings(dev_mode=True)
    async with aiohttp.ClientSession() as session:
        connector = BotConnector(settings, session)
        connector.backoff_base_s = 0.01
        fake_teams.fail("POST /teams/v3/conversations/a:x/activities", 429, times=10,
                        headers={"Retry-After": "0"})
        with pytest.raises(ConnectorError) as raised:
            await connector.send(fake_teams.service_url, "a:x", {"type": "message"})
        assert raised.value.status == 429
        assert len([c for c in fake_teams.calls if "a:x" in c.path]) == 5


def _unused(sent: SentMessage) -> None:
    del sent


async def test_the_connector_paces_each_conversation(fake_teams: FakeBotFramework) -> None:
    waits: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = ConversationLimiter(windows=((60.0, 2),), clock=lambda: now[0], sleep=sleep)
    async with aiohttp.ClientSession() as session:
        connector = BotConnector(TeamsSettings(dev_mode=True), session, limiter)
        for _ in range(3):
            await connector.send(fake_teams.service_url, "a:paced", {"type": "message"})
        await connector.send(fake_teams.service_url, "a:other", {"type": "message"})
    assert waits == [pytest.approx(60.0)], "the third send to a:paced waited; a:other did not"
