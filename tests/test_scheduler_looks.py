"""The worker's looks at the queue read the rows they need, not every queued job.

In a steady stream of expiries the jobs table holds thousands of queued jobs that are not
due yet (each live grant's expiry) and, behind a batch, notices waiting their turn. The
worker looks at the queue many times a second (a batch claim, the urgent jobs' claim, when
the next job or held lease comes due) and a batch's record marks its revoke jobs done by
key; each of those must seek its rows through an index. Measured on SQLite as the virtual
machine instructions each statement ran (its progress handler), which grow with the rows a
statement reads: a look that walks the queue runs hundreds of thousands; on PostgreSQL as
the rows its plan read (``EXPLAIN ANALYZE``: rows returned and removed by filters, per
node), in a transaction rolled back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from pimbot.scheduling.queue import ClaimedJob, JobQueue, NewJob, discard, enqueue_many
from pimbot.scheduling.sharing import Share
from pimbot.scheduling.worker import Worker
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock
from statement_cost import Instructions

NOT_DUE = 3000  # expiries queued for later (priority 0)
WAITING = 3000  # notices due, waiting behind the batches (priority 5)
# A seek reads a handful of rows (~20 instructions each); a walk of the queue reads 6,000.
MOST = 10_000
MOST_ROWS = 1_000  # PostgreSQL: rows a plan may read
BATCH_KINDS = frozenset({"expire", "grant"})


async def _never(job: ClaimedJob) -> None:
    raise AssertionError("nothing runs here")


async def _never_batch(jobs: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception | None]]:
    raise AssertionError("nothing runs here")


@pytest.fixture
async def crowded(db: Database) -> AsyncIterator[tuple[Database, FakeClock]]:
    """A queue as a steady stream leaves it: a few expiries due and running, thousands not
    due yet, thousands of notices due behind them, revoke jobs due when their lease ends."""
    clock = FakeClock()
    now = clock.now()
    jobs = [NewJob("expire", {"n": i}, now + timedelta(seconds=1 + i / 100),
                   f"expire:{i}", priority=0) for i in range(NOT_DUE)]
    jobs += [NewJob("revoke", {"n": i}, now + timedelta(seconds=90), f"revoke:g{i}",
                    priority=0) for i in range(20)]
    jobs += [NewJob("expire", {"n": i}, now, f"expire:due{i}", priority=0) for i in range(8)]
    jobs += [NewJob("notify", {"n": i}, now - timedelta(seconds=1)) for i in range(WAITING)]
    async with db.transaction() as session:
        await enqueue_many(session, jobs)
        if not db.is_sqlite:  # as autovacuum would: PostgreSQL plans from statistics
            await (await session.connection()).exec_driver_sql("ANALYZE jobs")
    yield db, clock


async def test_the_looks_of_a_busy_worker_seek_their_rows(
        crowded: tuple[Database, FakeClock]) -> None:
    db, clock = crowded
    queue = JobQueue(db, clock, "w1")
    seen = Instructions(db)
    batch = await queue.claim_share(4, Share(1, 0, 32), kinds=BATCH_KINDS, max_priority=1)
    assert len(batch.jobs) == 4
    running = frozenset(job.id for job in batch.jobs)
    worker = Worker(queue, _never, batch_handler=_never_batch, batch_kinds=BATCH_KINDS)
    worker._running.update(running)  # as while it runs that first batch
    looks = {
        "batch claim": await seen.of(worker._claim_batch),
        "urgent claim": await seen.of(lambda: queue.claim(
            16, besides=BATCH_KINDS, max_priority=1, running=running)),
        "next due": await seen.of(lambda: queue.next_due_at(1, running)),
    }
    for look, statements in looks.items():
        assert statements, look
        for statement, cost in statements:
            assert cost < (MOST if db.is_sqlite else MOST_ROWS), (look, statement, cost)


async def test_revoke_jobs_are_discarded_through_their_key(
        crowded: tuple[Database, FakeClock]) -> None:
    db, clock = crowded
    seen = Instructions(db)

    async def record() -> None:
        async with db.transaction() as session:
            assert await discard(session, [f"revoke:g{i}" for i in range(10)],
                                 clock.now()) == 10

    [(statement, cost)] = await seen.of(record)
    assert cost < (MOST if db.is_sqlite else MOST_ROWS), (statement, cost)
