"""An approver pimbot cannot reach is reported after the cards of the same notices went out.

The requester and the role's channel are told "pimbot could not reach carol@example.com …
the message about request X". That report is written once the group of notices it came from
has been sent (``notices.handlers.Unreached``), so the channel sees X's approval card first,
then the report about it, even when posting the card is slow (here the fake Bot Connector
holds the channel post until another post reaches the channel, or a second has passed: with
the report written at once, it arrived first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB, CHANNEL, PEOPLE
from teams_rig import card_text, running

from pimbot.store.database import Database

HOLD = 1.0  # seconds the first channel post waits at most for another one (never asserted)


class SlowChannelPost(FakeBotFramework):
    """Bot Connector whose first new channel thread is answered late: until a second post
    to the channel arrives, or ``HOLD`` has passed."""

    def __init__(self) -> None:
        super().__init__([p.member for p in PEOPLE])
        self.channel_posts = 0
        self._another = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method == "POST" and request.path == "/teams/v3/conversations":
            body = await request.json()
            if (body.get("channelData") or {}).get("channel"):
                self.channel_posts += 1
                if self.channel_posts == 1:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._another.wait(), HOLD)
                else:
                    self._another.set()
        return await super()._handle(request)


@pytest.fixture
async def slow_teams() -> AsyncIterator[SlowChannelPost]:
    fake = SlowChannelPost()
    await fake.start()
    yield fake
    await fake.close()


async def test_the_unreachable_approver_is_reported_after_the_approval_card(
        db: Database, slow_teams: SlowChannelPost) -> None:
    async with running(db, slow_teams, POLICY) as rig:
        assert (await rig.driver.post(rig.driver.team_added(ALICE))).status == 201
        await rig.introduce(BOB, ALICE)  # carol never installed pimbot: known by email only
        await rig.say(BOB, "pim activate prod-db-admin for 1h reason restore backup")
        in_channel = [card_text(card) for conv, _ in slow_teams.activities
                      if conv.startswith(CHANNEL) for card in slow_teams.cards_in(conv)]
    assert len(in_channel) == 2, in_channel
    assert in_channel[0].startswith("Activation approval needed"), in_channel
    assert in_channel[1].startswith("pimbot could not reach carol@example.com"), in_channel
