"""An expiry batch that read its requests before someone else changed one of them, on
PostgreSQL. The batch is held between its read and its write by the slot lock it waits for
(a test transaction holds it), while the other change commits; the batch's bulk
compare-and-set (``store.versioned``) must then refuse to expire the changed request, and
the others of the batch are still expired exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.workflow.actor import Actor
from pimbot.workflow.lifecycle.revocations import expire_many

from .harness import Pim, make_pim, request_id_of

BOB, CAROL = "bob@example.com", "carol@example.com"
ROLE = "staging-deploy"

pytestmark = pytest.mark.parametrize(
    "db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def _job(request_id: str) -> ClaimedJob:
    return ClaimedJob(0, "expire", {"request_id": request_id}, 0,
                      datetime(2026, 1, 1, tzinfo=UTC))


async def _waiting(db: Database) -> int:
    """Advisory-lock waits in this test's database."""
    async with db.engine.connect() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ))).scalar_one())


async def _until_waiting(db: Database, count: int) -> None:
    for _ in range(200):
        if await _waiting(db) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"nobody waits for the slot lock ({count} expected)")


@asynccontextmanager
async def _slot_held(db: Database, email: str, role: str) -> AsyncIterator[None]:
    async with db.engine.connect() as conn, conn.begin():
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                           {"k": f"slot:{email}:{role}"})
        yield


async def _two_active(pim: Pim) -> tuple[str, str]:
    bob = request_id_of(await pim.say(BOB, f"activate {ROLE} for 1h"))
    carol = request_id_of(await pim.say(CAROL, f"activate {ROLE} for 1h"))
    async with pim.core.ctx.db.read() as session:
        row = await session.get(RequestRow, bob)
    assert row is not None and row.expires_at is not None
    pim.clock.set(row.expires_at)  # both due (the same duration, granted in the same second)
    return bob, carol


async def _stale_batch(pim: Pim, ids: list[str], change: Awaitable[Any]) -> Any:
    """The batch reads, then waits on BOB's slot; ``change`` commits; then the batch goes on."""
    db = pim.core.ctx.db
    async with _slot_held(db, BOB, ROLE):
        batch = asyncio.create_task(expire_many(pim.core.ctx, [_job(rid) for rid in ids]))
        await _until_waiting(db, 1)
        changed = await change
    outcomes = await batch
    assert all(exc is None for _, exc in outcomes), outcomes
    await pim.core.drain()
    return changed


async def _events(db: Database, request_id: str) -> list[str]:
    async with db.read() as session:
        events = (await session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq))).all()
    return [e.action for e in events if e.detail.get("request") == request_id]


async def _state(db: Database, request_id: str) -> str:
    async with db.read() as session:
        row = await session.get(RequestRow, request_id)
    assert row is not None
    return row.state


async def test_a_request_extended_under_a_batch_is_not_expired_by_it(db: Database) -> None:
    """Guard: the version compare-and-set of ``set_each`` (red without it)."""
    pim = await make_pim(db)
    bob, carol = await _two_active(pim)
    extended = await _stale_batch(pim, [bob, carol], pim.core.handle_text(
        Actor(BOB), f"extend {ROLE} for 1h"))
    assert extended.ok, extended.text
    assert await _state(db, bob) == "active", "the stale batch expired an extended request"
    assert "request.expired" not in await _events(db, bob)
    assert (BOB, ROLE) in pim.provider.held
    assert await _state(db, carol) == "expired"
    assert [c.activation_id for c in pim.provider.actions("revoke")] == [carol]
    assert (await verify_chain(db)).ok


async def test_a_request_deactivated_under_a_batch_is_revoked_once(db: Database) -> None:
    """Guards: the version compare-and-set of ``set_each`` and, behind it, the once-only
    ``request.ended`` audit key (red only without both)."""
    pim = await make_pim(db)
    bob, carol = await _two_active(pim)
    db_ = pim.core.ctx.db
    async with _slot_held(db_, BOB, ROLE):
        # BOB's turn queues on his slot before the batch reads, so it commits first.
        turn = asyncio.create_task(pim.core.handle_text(Actor(BOB), f"deactivate {ROLE}"))
        await _until_waiting(db_, 1)
        batch = asyncio.create_task(expire_many(pim.core.ctx, [_job(bob), _job(carol)]))
        await _until_waiting(db_, 2)
    reply = await turn
    outcomes = await batch
    assert all(exc is None for _, exc in outcomes), outcomes
    await pim.core.drain()
    assert reply.ok, reply.text
    assert await _state(db, bob) == "deactivated"
    assert "request.expired" not in await _events(db, bob)
    assert await _state(db, carol) == "expired"
    revoked = sorted(c.activation_id for c in pim.provider.actions("revoke"))
    assert revoked == sorted([bob, carol]), "each revoked exactly once"
    assert pim.provider.unmatched() == {}
    assert (await verify_chain(db)).ok
