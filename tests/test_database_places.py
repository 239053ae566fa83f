"""PostgreSQL: a burst of sessions waits for one of the pool's connections in memory; it
never opens more connections than the pool keeps, and a read inside a transaction never
waits for a place its own task holds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text

from pimbot.store.database import POOL_SIZE, Database

BURST = POOL_SIZE * 4  # more than the pool and its overflow together (30) hold


def _count_checked_out(database: Database) -> dict[str, int]:
    seen = {"now": 0, "most": 0}

    def checkout(*_: Any) -> None:
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])

    def checkin(*_: Any) -> None:
        seen["now"] -= 1

    event.listen(database.engine.sync_engine.pool, "checkout", checkout)
    event.listen(database.engine.sync_engine.pool, "checkin", checkin)
    return seen


async def test_a_burst_of_transactions_uses_at_most_the_pool(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite writers are serial; the places are PostgreSQL's")
    seen = _count_checked_out(db)
    started = asyncio.Event()

    async def one(n: int) -> int:
        async with db.transaction() as session:
            started.set()
            await session.execute(text("SELECT pg_sleep(0.02)"))
            return int(await session.scalar(text("SELECT CAST(:n AS INTEGER)"), {"n": n}) or 0)

    async with asyncio.timeout(20):  # a hang fails instead of blocking
        answers = await asyncio.gather(*(one(n) for n in range(BURST)))
    assert sorted(answers) == list(range(BURST))  # every one of them ran
    assert started.is_set()
    assert seen["most"] <= POOL_SIZE, seen  # the rest waited, they opened no overflow


async def test_a_read_inside_a_transaction_does_not_wait_for_its_own_place(
        db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite writers are serial; the places are PostgreSQL's")

    async def nested() -> int:
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_sleep(0.01)"))
            async with db.read() as inner:  # every place is taken by the outer sessions
                return int(await inner.scalar(text("SELECT 1")) or 0)

    async with asyncio.timeout(20):
        answers = await asyncio.gather(*(nested() for _ in range(POOL_SIZE * 2)))
    assert answers == [1] * (POOL_SIZE * 2)
