from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from pimbot.ports import SystemClock
from pimbot.scheduling import (
    ClaimedJob,
    JobQueue,
    JobStatus,
    PermanentJobError,
    RetryPolicy,
    Worker,
    enqueue,
)
from pimbot.scheduling.completions import Completions
from pimbot.store.database import Database
from pimbot.store.tables import JobRow
from pimbot.testing.fakes import FakeClock

NO_JITTER = RetryPolicy(jitter=0.0)


class Recorder:
    """A handler that records the jobs it ran and can be told to fail."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.ran: list[ClaimedJob] = []
        self.fail_with = fail_with

    async def __call__(self, job: ClaimedJob) -> None:
        self.ran.append(job)
        if self.fail_with is not None:
            raise self.fail_with

    @property
    def names(self) -> list[Any]:
        return [job.payload.get("name") for job in self.ran]


async def _enqueue(db: Database, due_at: datetime, name: str = "job", **kwargs: Any) -> None:
    async with db.transaction() as session:
        await enqueue(session, "test", {"name": name}, due_at, **kwargs)


async def _jobs(db: Database) -> list[JobRow]:
    async with db.read() as session:
        return list((await session.execute(select(JobRow).order_by(JobRow.id))).scalars())


def _worker(db: Database, clock: FakeClock, handler: Recorder, owner: str = "w1") -> Worker:
    return Worker(JobQueue(db, clock, owner, retry=NO_JITTER), handler)


async def test_due_jobs_run_and_future_ones_wait_for_the_clock(db: Database) -> None:
    clock = FakeClock()
    handler = Recorder()
    worker = _worker(db, clock, handler)
    await _enqueue(db, clock.now() - timedelta(hours=1), "overdue")
    await _enqueue(db, clock.now(), "now")
    await _enqueue(db, clock.now() + timedelta(minutes=10), "later")

    assert await worker.run_due() == 2
    assert sorted(handler.names) == ["now", "overdue"]
    assert await worker.queue.next_due_at() == clock.now() + timedelta(minutes=10)

    clock.advance(timedelta(minutes=9, seconds=59))
    assert await worker.run_due() == 0
    clock.advance(timedelta(seconds=1))
    assert await worker.run_due() == 1
    assert handler.names[-1] == "later"
    assert [job.status for job in await _jobs(db)] == ["done"] * 3
    assert await worker.queue.next_due_at() is None


async def test_a_failing_job_retries_with_growing_delay_then_fails(db: Database) -> None:
    clock = FakeClock()
    handler = Recorder(fail_with=RuntimeError("provider unavailable"))
    worker = _worker(db, clock, handler)
    await _enqueue(db, clock.now(), max_attempts=5)

    delays = []
    for _ in range(4):
        before = clock.now()
        assert await worker.run_due() == 1
        (job,) = await _jobs(db)
        assert job.status == "queued"
        delays.append(job.due_at - before)
        clock.set(job.due_at - timedelta(milliseconds=1))
        assert await worker.run_due() == 0  # not before the backoff is over
        clock.set(job.due_at)
    assert delays == [timedelta(seconds=s) for s in (1, 2, 4, 8)]

    assert await worker.run_due() == 1
    (job,) = await _jobs(db)
    assert job.status == "failed"
    assert job.attempts == 5
    assert job.last_error == "RuntimeError: provider unavailable"
    clock.advance(timedelta(days=1))
    assert await worker.run_due() == 0
    assert len(handler.ran) == 5
    assert [j.attempts for j in handler.ran] == [0, 1, 2, 3, 4]


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(random=lambda: 1.0)
    assert policy.delay(1) == timedelta(seconds=1.1)
    assert policy.delay(30) == timedelta(minutes=5) * 1.1
    assert NO_JITTER.delay(9) == timedelta(seconds=256)
    assert NO_JITTER.delay(10) == timedelta(minutes=5)


async def test_a_permanent_error_fails_the_job_at_once(db: Database) -> None:
    clock = FakeClock()
    handler = Recorder(fail_with=PermanentJobError("role no longer exists"))
    worker = _worker(db, clock, handler)
    await _enqueue(db, clock.now())
    assert await worker.run_due() == 1
    (job,) = await _jobs(db)
    assert job.status == "failed"
    assert "role no longer exists" in job.last_error
    clock.advance(timedelta(hours=1))
    assert await worker.run_due() == 0


async def test_a_dedupe_key_makes_enqueue_idempotent_among_queued_jobs(db: Database) -> None:
    clock = FakeClock()
    handler = Recorder()
    worker = _worker(db, clock, handler)
    async with db.transaction() as session:
        assert await enqueue(session, "expire", {"name": "a"}, clock.now(), dedupe_key="exp:r1")
        assert not await enqueue(session, "expire", {"name": "b"}, clock.now(), dedupe_key="exp:r1")
    await _enqueue(db, clock.now(), "c", dedupe_key="exp:r1")
    assert await worker.run_due() == 1
    assert handler.names == ["a"]
    # A job that has run frees its key: a job needed later is never swallowed by one that
    # ran early and found nothing to do.
    await _enqueue(db, clock.now(), "d", dedupe_key="exp:r1")
    await _enqueue(db, clock.now(), "e", dedupe_key="exp:r1")
    assert await worker.run_due() == 1
    assert handler.names == ["a", "d"]


async def test_a_job_from_a_rolled_back_transaction_never_runs(db: Database) -> None:
    clock = FakeClock()
    handler = Recorder()
    worker = _worker(db, clock, handler)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await enqueue(session, "notify", {"name": "ghost"}, clock.now())
            raise RuntimeError("the state change failed")
    clock.advance(timedelta(hours=1))
    assert await worker.run_due() == 0
    assert handler.ran == []
    assert await _jobs(db) == []


async def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_complete(
    db: Database,
) -> None:
    clock = FakeClock()
    first = JobQueue(db, clock, "replica-a", lease=timedelta(seconds=60))
    second = JobQueue(db, clock, "replica-b", lease=timedelta(seconds=60))
    await _enqueue(db, clock.now())
    (mine,) = await first.claim()
    assert await second.claim() == []  # leased: invisible to others
    assert await second.next_due_at() == clock.now() + timedelta(seconds=60)

    clock.advance(timedelta(seconds=61))  # replica-a stalled past its lease
    (theirs,) = await second.claim()
    assert theirs.id == mine.id
    assert not await first.complete(mine)
    assert not await first.fail(mine, "late")
    (job,) = await _jobs(db)
    assert (job.status, job.lease_owner, job.attempts) == ("queued", "replica-b", 0)

    assert await second.complete(theirs)
    assert not await second.complete(theirs)  # no second completion either
    (job,) = await _jobs(db)
    assert job.status == "done"


async def test_the_same_owner_cannot_complete_with_a_stale_claim(db: Database) -> None:
    clock = FakeClock()
    queue = JobQueue(db, clock, "replica-a")
    await _enqueue(db, clock.now())
    (stale,) = await queue.claim()
    clock.advance(timedelta(minutes=2))
    (fresh,) = await queue.claim()
    assert not await queue.complete(stale)
    assert await queue.complete(fresh)


async def test_handlers_run_concurrently_up_to_the_limit(db: Database) -> None:
    clock = FakeClock()
    active, peak = 0, 0
    release = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if active == 3:
            release.set()
        await release.wait()
        active -= 1

    worker = Worker(JobQueue(db, clock, "w"), handler, concurrency=3)
    for i in range(7):
        await _enqueue(db, clock.now(), f"j{i}")
    assert await worker.run_due() == 7
    assert peak == 3
    assert {job.status for job in await _jobs(db)} == {"done"}


async def test_stop_lets_the_job_in_flight_finish(db: Database) -> None:
    clock = FakeClock()
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        started.set()
        await release.wait()

    worker = Worker(JobQueue(db, clock, "w"), handler, max_sleep=0.05)
    await _enqueue(db, clock.now())
    loop = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), timeout=30)
    assert worker.running and worker.last_tick == clock.now()
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, timeout=30)
    await loop
    assert not worker.running
    assert [job.status for job in await _jobs(db)] == ["done"]


async def test_the_loop_is_woken_by_a_commit_that_enqueued_a_job(db: Database) -> None:
    clock = FakeClock()
    ran = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        ran.set()

    # max_sleep is far longer than the test's patience: only a wake-up can run the job.
    worker = Worker(JobQueue(db, clock, "w"), handler, max_sleep=600)
    worker.attach(db)
    loop = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)  # let it find nothing due and go to sleep
        await _enqueue(db, clock.now())
        await asyncio.wait_for(ran.wait(), timeout=30)
    finally:
        await worker.stop()
        await loop
    assert [job.status for job in await _jobs(db)] == ["done"]


@pytest.mark.postgres
async def test_three_replicas_run_each_of_200_jobs_exactly_once(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("replicas share one PostgreSQL database")
    clock = SystemClock()
    now = clock.now()
    async with db.transaction() as session:
        for i in range(200):
            await enqueue(session, "test", {"n": i}, now - timedelta(seconds=i % 7))
    ran: list[int] = []
    all_ran = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        ran.append(job.id)
        await asyncio.sleep(0)
        if len(set(ran)) >= 200:
            all_ran.set()

    replicas = [Database(db.url) for _ in range(3)]
    workers = [
        Worker(JobQueue(replica, clock, f"replica-{i}"), handler, max_sleep=0.05, concurrency=8)
        for i, replica in enumerate(replicas)
    ]
    loops = [asyncio.create_task(w.run()) for w in workers]
    try:
        await asyncio.wait_for(all_ran.wait(), timeout=120)
    finally:
        for worker in workers:
            await worker.stop()
        await asyncio.gather(*loops)
        for replica in replicas:
            await replica.dispose()

    duplicates = [job_id for job_id, n in Counter(ran).items() if n > 1]
    assert duplicates == []
    jobs = await _jobs(db)
    assert sorted(ran) == [job.id for job in jobs]
    assert {job.status for job in jobs} == {JobStatus.DONE}
    assert {job.lease_owner for job in jobs} == {None}


async def test_jobs_ending_together_are_done_in_one_transaction_each_on_its_own_lease(
    db: Database,
) -> None:
    clock = FakeClock()
    first = JobQueue(db, clock, "replica-a", lease=timedelta(seconds=60))
    second = JobQueue(db, clock, "replica-b", lease=timedelta(seconds=60))
    for name in ("taken-over", "still-mine", "also-mine"):
        await _enqueue(db, clock.now(), name)
    taken, *mine = await first.claim()
    clock.advance(timedelta(seconds=61))  # replica-a stalled: replica-b takes the first one
    (theirs,) = await second.claim(1)
    assert theirs.id == taken.id
    # replica-a's leases on the other two ran out too: it claims them again
    again = await first.claim(running=frozenset({taken.id}))
    assert sorted(job.id for job in again) == sorted(job.id for job in mine)
    writes: list[str] = []
    event.listen(db.engine.sync_engine, "begin", lambda conn: writes.append("begin"))
    completions = Completions(first)
    outcomes = await asyncio.gather(completions.complete([taken]),
                                    *(completions.complete([job]) for job in again))
    assert outcomes == [set(), {again[0].id}, {again[1].id}]
    assert len(writes) == 1  # the three completions shared one transaction
    states = {job.payload["name"]: (job.status, job.lease_owner) for job in await _jobs(db)}
    assert states == {"taken-over": ("queued", "replica-b"), "still-mine": ("done", None),
                      "also-mine": ("done", None)}
