"""Several jobs in one INSERT keep every rule of ``enqueue``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pimbot.scheduling.queue import JobQueue, NewJob, enqueue, enqueue_many
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
