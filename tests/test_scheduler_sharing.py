"""Replicas share a burst: a batch claim takes about its share of what is due.

The two-worker tests run two workers, each on its own engine and with its own row in the
replicas table (as two hosts: a different pid namespace each), on one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from pimbot.ports import SystemClock
from pimbot.scheduling import ClaimedJob, JobQueue, JobStatus, Worker
from pimbot.scheduling.queue import NewJob, enqueue_many
from pimbot.scheduling.replicas import Replicas
from pimbot.scheduling.sharing import Share
from pimbot.store.database import Database
from pimbot.store.tables import JobRow

BURST = 200
KIND = "expire"


@pytest.mark.parametrize(("live", "held", "due", "claims"), [
    (1, 0, 600, 250),   # alone: the whole batch, as without sharing
    (2, 0, 200, 100),   # two: half each
    (2, 0, 201, 101),
    (3, 0, 300, 100),
    (2, 100, 200, 0),   # its half is running: nothing more until a batch ends
    (2, 60, 200, 40),   # tops up to its half
    (2, 90, 200, 32),   # ... but never in fewer than the floor
    (2, 0, 10, 10),     # a small burst is not split
    (2, 0, 0, 0),       # nothing due
    (4, 0, 4000, 250),  # never more than the batch
])
def test_a_claim_takes_its_share_of_what_is_due(live: int, held: int, due: int,
                                                claims: int) -> None:
    assert Share(live, held, floor=32).claim_size(due, limit=250) == claims


class Batches:
    """A batch handler standing in for the provider: it records what each worker ran, and
    holds every batch until the whole burst has been claimed (a provider call takes time;
    here it takes exactly until everyone who wanted a part has one)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.ran: dict[str, list[int]] = {}
        self.batches: dict[str, int] = {}
        self.claimed = 0
        self.all_claimed = asyncio.Event()

    def handler(self, owner: str):  # type: ignore[no-untyped-def]
        async def run(jobs: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception | None]]:
            self.ran.setdefault(owner, []).extend(job.id for job in jobs)
            self.batches[owner] = self.batches.get(owner, 0) + 1
            self.claimed += len(jobs)
            if self.claimed >= self.total:
                self.all_claimed.set()
            await self.all_claimed.wait()
            return [(job, None) for job in jobs]
        return run


async def _no_single(job: ClaimedJob) -> None:
    raise AssertionError(f"job {job.id} ran outside a batch")


async def _burst(db: Database, count: int = BURST) -> None:
    now = SystemClock().now()
    async with db.transaction() as session:
        await enqueue_many(session, [NewJob(KIND, {"n": i}, now - timedelta(seconds=1),
                                            priority=0) for i in range(count)])


async def _statuses(db: Database) -> Counter[str]:
    async with db.read() as session:
        return Counter((await session.execute(select(JobRow.status))).scalars())


async def _replica(url: str, owner: str, batches: Batches) -> tuple[Database, Replicas, Worker]:
    database = Database(url)
    replicas = Replicas(database, owner, beat=3600)
    replicas.pidspace = f"host-of-{owner}"  # two hosts: neither takes the other for dead
    await replicas.join()
    worker = Worker(JobQueue(database, SystemClock(), owner), _no_single, max_sleep=0.05,
                    batch_handler=batches.handler(owner), batch_kinds=frozenset({KIND}),
                    live=replicas.live)
    return database, replicas, worker


@pytest.mark.postgres
async def test_two_replicas_split_a_burst_due_at_one_instant(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("replicas share one PostgreSQL database")
    await _burst(db)
    batches = Batches(BURST)
    a = await _replica(db.url, "replica-a", batches)
    b = await _replica(db.url, "replica-b", batches)
    try:
        for _, replicas, _ in (a, b):
            await replicas.reap()  # each has looked at the table since both joined
            assert replicas.live() == 2
        ran = await asyncio.wait_for(asyncio.gather(a[2].run_due(), b[2].run_due()), 60)
    finally:
        for database, replicas, _ in (a, b):
            await replicas.leave()
            await database.dispose()

    assert sorted(len(ids) for ids in batches.ran.values()) == [BURST // 2, BURST // 2]
    assert sum(ran) == BURST
    every = [job_id for ids in batches.ran.values() for job_id in ids]
    assert len(every) == len(set(every)) == BURST  # each job ran exactly once
    assert await _statuses(db) == {JobStatus.DONE.value: BURST}


async def test_a_replica_whose_peer_is_late_still_drains_the_burst(db: Database) -> None:
    await _burst(db)
    batches = Batches(0)  # nobody waits for the late peer
    late = Replicas(db, "replica-late", beat=3600)
    late.pidspace = "host-of-the-late-one"
    await late.join()
    database, replicas, worker = await _replica(db.url, "replica-a", batches)
    try:
        assert replicas.live() == 2
        assert await asyncio.wait_for(worker.run_due(), 60) == BURST
    finally:
        await replicas.leave()
        await database.dispose()
        await late.leave()

    assert await _statuses(db) == {JobStatus.DONE.value: BURST}
    # its half, then the rest in parts of at least the floor: 100, 50, 32, 18
    assert batches.batches["replica-a"] <= 4


async def test_a_lone_replica_claims_the_burst_in_one_batch(db: Database) -> None:
    await _burst(db)
    batches = Batches(0)
    database, replicas, worker = await _replica(db.url, "replica-a", batches)
    try:
        assert replicas.live() == 1
        assert await worker.run_due() == BURST
    finally:
        await replicas.leave()
        await database.dispose()

    assert batches.batches == {"replica-a": 1}
    assert await _statuses(db) == {JobStatus.DONE.value: BURST}


async def test_a_replica_running_its_share_does_not_poll_for_the_rest(db: Database) -> None:
    """While its half runs and the late peer's half waits, the worker sleeps until its batch
    ends (or the longest sleep), rather than looking at the queue every few milliseconds."""
    await _burst(db)
    late = Replicas(db, "replica-late", beat=3600)
    late.pidspace = "host-of-the-late-one"
    await late.join()
    started, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first(jobs: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception | None]]:
        if not started.is_set():
            started.set()
            await release.wait()
        return [(job, None) for job in jobs]

    database = Database(db.url)
    replicas = Replicas(database, "replica-a", beat=3600)
    replicas.pidspace = "host-of-replica-a"
    await replicas.join()
    worker = Worker(JobQueue(database, SystemClock(), "replica-a"), _no_single, max_sleep=2.0,
                    batch_handler=hold_the_first, batch_kinds=frozenset({KIND}),
                    live=replicas.live)
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    try:
        running = asyncio.create_task(worker.run_due())
        await asyncio.wait_for(started.wait(), 60)
        event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
        await asyncio.sleep(0.5)  # the first batch's provider calls
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)
        release.set()
        assert await asyncio.wait_for(running, 60) == BURST
    finally:
        release.set()
        await replicas.leave()
        await database.dispose()
        await late.leave()

    assert len(statements) <= 10, f"{len(statements)} statements while its batch ran"


@pytest.mark.postgres
async def test_a_job_due_while_a_replica_runs_its_share_starts_on_time(db: Database) -> None:
    """Its first batch still running, a job that comes due meanwhile (enqueued by another
    replica, which cannot wake this one) starts at its due time, not when the batch ends."""
    if db.is_sqlite:
        pytest.skip("replicas share one PostgreSQL database")
    await _burst(db, 64)
    peer = Replicas(db, "replica-peer", beat=3600)
    peer.pidspace = "host-of-the-peer"
    await peer.join()
    batches: list[list[ClaimedJob]] = []
    second, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first(jobs: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception | None]]:
        batches.append(jobs)
        if len(batches) == 1:
            await release.wait()
        else:
            second.set()
        return [(job, None) for job in jobs]

    database = Database(db.url)
    replicas = Replicas(database, "replica-a", beat=3600)
    replicas.pidspace = "host-of-replica-a"
    await replicas.join()
    worker = Worker(JobQueue(database, SystemClock(), "replica-a"), _no_single, max_sleep=600,
                    batch_handler=hold_the_first, batch_kinds=frozenset({KIND}),
                    live=replicas.live)
    try:
        # the peer takes its half of the burst (and sits on it); a job comes due in 2 s
        await JobQueue(db, SystemClock(), "replica-peer").claim(32, kinds=frozenset({KIND}))
        async with db.transaction() as session:  # not this worker's engine: no wake-up
            await enqueue_many(session, [NewJob(KIND, {"n": "later"}, SystemClock().now()
                                                + timedelta(seconds=2), priority=0)])
        running = asyncio.create_task(worker.run_due())
        await asyncio.wait_for(second.wait(), 30)
        release.set()
        await asyncio.wait_for(running, 60)
    finally:
        release.set()
        await replicas.leave()
        await database.dispose()
        await peer.leave()

    assert [len(batch) for batch in batches] == [32, 1]
    assert batches[1][0].payload == {"n": "later"}
