"""Every sent copy of a request's card shows its current state, even a copy that was still on
its way to the chat platform when the request changed."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from pimbot.ports import SentMessage
from pimbot.store.database import Database
from pimbot.store.tables import JobRow
from pimbot.testing.fakes import RecordingChatGateway
from pimbot.ui.cards import Card
from pimbot.workflow.actor import Actor

from .harness import make_pim, request_id_of

BOB, ALICE = "bob@example.com", "alice@example.com"


class HeldGateway(RecordingChatGateway):
    """Holds the cards sent to one person until released (a slow send, a 429)."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        if email == self.held:
            self.waiting.set()
            await self.release.wait()
        return await super().send_to_user(email, card)


async def _queued_redraws(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(JobRow).where(
            JobRow.kind == "refresh_cards", JobRow.status == "queued")) or 0)


async def test_a_card_on_its_way_when_the_request_is_cancelled_is_redrawn(db: Database) -> None:
    pim = await make_pim(db)
    chat = HeldGateway(ALICE)
    pim.core.ctx.gateways[:] = [chat]
    rid = request_id_of(await pim.core.handle_text(
        Actor(BOB), "activate prod-db-admin for 1h reason restore"))
    sending = asyncio.create_task(pim.core.drain())
    await asyncio.wait_for(chat.waiting.wait(), timeout=30)  # alice's card is on its way

    assert (await pim.core.handle_text(Actor(BOB), f"cancel {rid}")).ok
    for _ in range(3000):  # the cancel's redraw runs now, before alice's copy is stored
        if not await _queued_redraws(db):
            break
        await asyncio.sleep(0.01)
    assert not await _queued_redraws(db)
    chat.release.set()
    await asyncio.wait_for(sending, timeout=30)

    (alice,) = [d.latest for d in chat.to(f"user:{ALICE}")]
    assert alice.actions == (), "alice's copy no longer offers Approve / Deny"
    assert "ancel" in alice.title + alice.text
