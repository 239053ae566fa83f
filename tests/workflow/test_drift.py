"""Drift: access found at the provider without an activation is reported, and the reverse."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow
from pimbot.workflow.jobs.drift import schedule_next

from .harness import POLICY, make_pim

BOB, CAROL = "bob@example.com", "carol@example.com"
WATCHED = POLICY.replace("  demo: {type: noop}", "  demo: {type: noop, drift: alert}")


async def test_standing_access_outside_pimbot_is_reported(db: Database) -> None:
    assert WATCHED != POLICY
    pim = await make_pim(db, WATCHED)
    await schedule_next(pim.core.ctx, pim.clock.now())  # what PimCore.start() does
    await pim.say(BOB, "activate staging-deploy for 2h")
    pim.provider.held.add((CAROL, "staging-deploy"))  # someone granted carol by hand
    pim.provider.held.discard((BOB, "staging-deploy"))  # and removed bob's grant
    await pim.advance(timedelta(minutes=15))
    # staging-deploy has no notify channel, so the admins hear of it.
    titles = [c.title for c in pim.cards_to("user:sec-lead@example.com")]
    assert any(f"{CAROL} holds it at the provider" in t for t in titles), titles
    assert any(f"{BOB} has an active activation but no grant" in t for t in titles), titles
    async with db.read() as session:
        found = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "drift.detected"))).scalars().all()
    assert {e.detail["user"] for e in found} == {BOB, CAROL}


async def test_no_drift_no_noise(db: Database) -> None:
    pim = await make_pim(db, WATCHED)
    await schedule_next(pim.core.ctx, pim.clock.now())
    await pim.say(BOB, "activate staging-deploy for 2h")
    await pim.advance(timedelta(minutes=15))
    assert await pim.core.queue.next_due_at() is not None, "the next check is scheduled"
    assert not [d for d in pim.chat.deliveries if "Drift" in d.card.title]
