"""Several jobs in one INSERT keep every rule of ``enqueue``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from pimbot.scheduling.queue import JobQueue, NewJob, enqueue, enqueue_again, enqueue_many
from pimbot.store.database import Database
from pimbot.store.tables import JobRow
from pimbot.testing.fakes import FakeClock


async def test_a_batch_skips_a_key_already_queued_and_runs_the_rest(db: Database) -> None:
    clock = FakeClock()
    now = clock.now()
    async with db.transaction() as session:
        assert await enqueue(session, "notify", {"n": 0}, now, dedupe_key="timeout:r1")
    async with db.transaction() as session:
        written = await enqueue_many(session, [
            NewJob("notify", {"n": 1}, now),
            NewJob("approval_timeout", {"n": 2}, now + timedelta(hours=1),
                   dedupe_key="timeout:r1"),
            NewJob("notify", {"n": 3}, now, priority=1),
        ])
    assert written == 2
    async with db.read() as session:
        rows = (await session.execute(select(JobRow).order_by(JobRow.id))).scalars().all()
    assert [row.payload["n"] for row in rows] == [0, 1, 3]
    claimed = await JobQueue(db, clock, "me").claim()
    assert [job.payload["n"] for job in claimed] == [3, 0, 1]  # priority, then due, then id


async def test_redraws_brought_back_together_are_one_statement(db: Database) -> None:
    """A batch's redraws (``enqueue_again``) go as one multi-row INSERT, whether they are new
    or already queued (then they lose their lease and keep the earlier due time)."""
    clock = FakeClock()
    now = clock.now()
    redraws = [NewJob("refresh_cards", {"request_id": f"r{i}"}, now,
                      dedupe_key=f"refresh_cards:r{i}") for i in range(40)]
    async with db.transaction() as session:
        assert await enqueue_many(session, redraws[:20]) == 20
    claimed = await JobQueue(db, clock, "me").claim(20)
    assert len(claimed) == 20
    inserts: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.transaction() as session:
            assert await enqueue_again(session, redraws) == 40
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    async with db.read() as session:
        rows = (await session.execute(select(JobRow).where(
            JobRow.kind == "refresh_cards"))).scalars().all()
    assert len(rows) == 40  # the 20 queued ones were not written twice
    assert all(row.lease_owner is None and row.lease_expires_at is None for row in rows)
