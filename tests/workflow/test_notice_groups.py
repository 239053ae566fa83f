"""The worker runs a claim's notices and card redraws together: each still ends on its own (one
that fails is retried alone), a redraw queued twice is one redraw, and a change that lands
while a redraw of its request is on its way is redrawn after it."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pimbot.ports import SentMessage
from pimbot.store.database import Database
from pimbot.store.tables import JobRow
from pimbot.testing.fakes import RecordingChatGateway
from pimbot.ui.cards import Card
from pimbot.workflow.actor import Actor

from .harness import make_pim, request_id_of

BOB, ALICE, CAROL, LEAD = ("bob@example.com", "alice@example.com", "carol@example.com",
                           "sec-lead@example.com")


class FlakyGateway(RecordingChatGateway):
    """The first card sent to one person fails (a platform error, not "unreachable")."""

    def __init__(self, flaky: str) -> None:
        super().__init__()
        self.flaky = flaky
        self.failed = 0

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        if email == self.flaky and not self.failed:
            self.failed += 1
            raise RuntimeError("chat platform unavailable")
        return await super().send_to_user(email, card)


class HeldUpdates(RecordingChatGateway):
    """Holds the first card update until released (a slow redraw, a 429)."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def update(self, sent: SentMessage, card: Card) -> None:
        if self.holding:
            self.waiting.set()
            await self.release.wait()
        await super().update(sent, card)


async def _jobs(db: Database, kind: str, status: str = "queued") -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(JobRow).where(
            JobRow.kind == kind, JobRow.status == status)) or 0)


async def test_one_failed_card_of_a_group_is_retried_alone(db: Database) -> None:
    pim = await make_pim(db)
    chat = FlakyGateway(ALICE)
    pim.core.ctx.gateways[:] = [chat]
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason restore"))

    assert len(chat.to(f"user:{CAROL}")) == 1, "carol's card went, though alice's failed"
    assert chat.to(f"user:{ALICE}") == []
    assert await _jobs(db, "notify") == 1, "alice's card waits for its retry"

    await pim.advance(timedelta(minutes=5))  # past the retry's backoff
    (alice,) = chat.to(f"user:{ALICE}")
    assert alice.card.actions != (), "alice gets her Approve / Deny card"
    assert len(chat.to(f"user:{CAROL}")) == 1, "carol's card is not sent twice"
    assert len(chat.to("channel:#sec-alerts")) <= 1

    # alice's copy was stored: her card follows the request
    assert (await pim.say(BOB, f"cancel {rid}")).ok
    assert chat.to(f"user:{ALICE}")[0].latest.actions == ()


async def test_redraws_queued_twice_for_a_request_are_one(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate two-man for 1h reason restore"))
    approvers = [f"user:{a}" for a in (ALICE, CAROL, LEAD)]
    before = {a: len(pim.chat.to(a)[0].updates) for a in approvers}

    await pim.core.handle_text(Actor(ALICE), f"approve {rid}")  # not drained: queued
    await pim.core.handle_text(Actor(BOB), f"cancel {rid}")
    assert await _jobs(db, "refresh_cards") == 1
    await pim.core.drain()

    for audience in approvers:
        copy = pim.chat.to(audience)[0]
        assert len(copy.updates) == before[audience] + 1, f"{audience}: redrawn once"
        assert copy.latest.actions == ()


async def test_a_change_during_a_redraw_is_redrawn_after_it(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pimbot.scheduling")
    pim = await make_pim(db)
    chat = HeldUpdates()
    pim.core.ctx.gateways[:] = [chat]
    rid = request_id_of(await pim.say(BOB, "activate two-man for 1h reason restore"))
    assert chat.to(f"user:{CAROL}")[0].latest.actions != ()

    chat.holding = True
    assert (await pim.core.handle_text(Actor(ALICE), f"approve {rid}")).ok
    redrawing = asyncio.create_task(pim.core.drain())
    await asyncio.wait_for(chat.waiting.wait(), timeout=30)  # drawn with alice's vote only
    assert (await pim.core.handle_text(Actor(BOB), f"cancel {rid}")).ok
    chat.holding = False
    chat.release.set()
    await asyncio.wait_for(redrawing, timeout=30)
    await pim.core.drain()

    for approver in (ALICE, CAROL, LEAD):
        card = chat.to(f"user:{approver}")[0].latest
        assert card.actions == (), f"{approver}'s copy no longer offers Approve / Deny"
        assert "ancel" in card.title + card.text
    assert await _jobs(db, "refresh_cards") == 0
    # The redraw brought back while it ran is expected, not a lost lease: the console
    # prints warnings to the person's terminal.
    lost = [r for r in caplog.records if "lease lost" in r.getMessage()]
    assert lost == [], [r.getMessage() for r in lost]
    assert any("queued again while they ran" in r.getMessage() for r in caplog.records)

