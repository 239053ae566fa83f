"""The worker loop: run every due job, then sleep until the next one or until woken.

Due times come from the queue's Clock; sleeping uses real time, capped at ``max_sleep`` so a
job enqueued by another replica (which cannot wake this one) is picked up within that bound.
A commit in this process that enqueued a job wakes the loop at once (see ``attach``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.logcontext import bound
from pimbot.scheduling.completions import Completions
from pimbot.scheduling.queue import (
    ENQUEUED_FLAG,
    ENQUEUED_PRIORITY,
    ClaimedJob,
    JobQueue,
    SharedClaim,
)
from pimbot.scheduling.retry import PermanentJobError, RetryLater
from pimbot.scheduling.sharing import DEFAULT_FLOOR, Share
from pimbot.store.database import Database

log = logging.getLogger(__name__)

JobHandler = Callable[[ClaimedJob], Awaitable[None]]
# Runs many claimed jobs of the batch kinds at once; says how each ended (None: done). It
# should not raise; if it does, every job of the batch failed with that error.
BatchHandler = Callable[[list[ClaimedJob]], Awaitable[list[tuple[ClaimedJob, Exception | None]]]]
_MIN_SLEEP = 0.01
ALIVE_LOOKS = 5  # the loop is alive while it has looked at the queue within 5 max sleeps
_MAX_LOGGED_ERROR = 300


# Notices and redraws run together at most this many per group. A group holds the leases of
# all its jobs until its slowest send ends, and Teams paces sends to one conversation (60 in
# 30 s, and 1/N of that with N replicas): 32 to one channel fit well inside the 60 s lease
# even shared by two replicas, where 64 could outlast it and be sent again by another worker.
GROUP_SIZE = 32

class Worker:
    """Runs a handler for every due job, up to ``concurrency`` at a time; jobs of
    ``batch_kinds`` are claimed up to ``batch_size`` at once and run together by
    ``batch_handler`` (up to ``batches`` such batches in flight), beside the others; while a
    batch is in flight only jobs of priority ``urgent`` or more urgent start (so a burst of
    expiries is not slowed by the notices of the ones before it). Jobs of ``batch_kinds``
    are urgent themselves: a batch claim takes none above ``urgent`` (it then seeks the due
    rows of those priorities rather than reading every due notice). With ``live`` (how many
    replicas are alive, this one included), a batch claim takes about this worker's share of
    the burst due, at least ``share_floor`` jobs (``scheduling/sharing.py``). Jobs of
    ``group_kinds`` (notices, redraws) are claimed with the other jobs, within
    ``concurrency``, and those of one claim run together through ``group_handler``; when a
    claim is all taken up, more of those kinds join its group (up to ``group_size``), a group
    counting as at most half of ``concurrency``."""

    def __init__(
        self,
        queue: JobQueue,
        handler: JobHandler,
        *,
        max_sleep: float = 2.0,
        concurrency: int = 8,
        batch_handler: BatchHandler | None = None,
        batch_kinds: frozenset[str] = frozenset(),
        batch_size: int = 250,
        batches: int = 4,
        urgent: int = 1,
        live: Callable[[], int] | None = None,
        share_floor: int = DEFAULT_FLOOR,
        group_handler: BatchHandler | None = None,
        group_kinds: frozenset[str] = frozenset(),
        group_size: int = GROUP_SIZE,
    ) -> None:
        if concurrency < 1 or batch_size < 1 or batches < 1:
            raise ValueError("concurrency, batch_size and batches must be at least 1")
        self.queue = queue
        self.completions = Completions(queue)  # jobs ending together: one transaction
        self.handler = handler
        self.max_sleep = max_sleep
        self.concurrency = concurrency
        self.batch_handler = batch_handler
        self.batch_kinds = batch_kinds if batch_handler is not None else frozenset()
        self.batch_size = batch_size
        self.batches = batches
        self.urgent = urgent  # priority numbers up to this still start while a batch runs
        self.live = live
        self.share_floor = share_floor
        self.group_handler = group_handler
        self.group_kinds = group_kinds if group_handler is not None else frozenset()
        self.group_size = group_size
        self._sizes: dict[asyncio.Task[None], int] = {}  # jobs per task besides the batches
        self._held = 0  # jobs of the batch kinds this worker runs now (its part of a burst)
        self.running = False
        self.last_tick: datetime | None = None
        self._woken = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()  # across every run_due call
        self._running: set[int] = set()  # the ids of the jobs those tasks run
        self._batches_running = 0
        self._stopping = False
        self._stopped = asyncio.Event()
        self._looked_at = time.monotonic()  # the last time the loop claimed or slept

    def attach(self, db: Database) -> None:
        """Wake this worker after every commit on ``db`` that enqueued a job."""
        db.on_commit(self._after_commit)

    def _after_commit(self, session: AsyncSession) -> None:
        if not session.info.get(ENQUEUED_FLAG):
            return
        if self._batches_running and session.info.get(ENQUEUED_PRIORITY, 0) > self.urgent:
            return  # nothing it may start before the batch ends (which looks again)
        self.wake()

    def wake(self) -> None:
        self._woken.set()

    def alive(self) -> bool:
        """Running, and the loop looked at the queue within ``ALIVE_LOOKS`` of its longest
        sleep (a loop stuck on a database that does not answer is not alive)."""
        limit = max(self.max_sleep, 1.0) * ALIVE_LOOKS
        return self.running and time.monotonic() - self._looked_at <= limit

    async def run_due(self) -> int:
        """Claim and run every job due now (including ones that become due while running,
        and woken by commits that enqueue); return how many ran. In-flight jobs always
        finish before this returns."""
        ran = 0
        singles: set[asyncio.Task[None]] = set()
        batches: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._woken.clear()  # a commit from here on wakes the wait below
                claimed = 0
                share_taken = False  # this worker runs its share of the burst due already
                if not self._stopping and self.batch_kinds and len(batches) < self.batches:
                    batch = await self._claim_batch()
                    share_taken = batch.share_taken
                    if batch.jobs:
                        batches.add(self._hold(batch.jobs, self._track(
                            batch.jobs, self._execute_batch(batch.jobs))))
                        claimed += len(batch.jobs)
                free = self.concurrency - sum(self._sizes.get(task, 1) for task in singles)
                if not self._stopping and free > 0:
                    # While a batch runs, only urgent jobs start: notices wait for it.
                    jobs = await self.queue.claim(
                        free, besides=self.batch_kinds,
                        max_priority=self.urgent if batches else None,
                        running=self._running_ids())
                    jobs += await self._more_of_group(jobs, free, bool(batches))
                    singles.update(self._start(jobs))
                    claimed += len(jobs)
                self._looked_at = time.monotonic()
                ran += claimed
                if not singles and not batches:
                    return ran
                busy = sum(self._sizes.get(task, 1) for task in singles)
                room = not self._stopping and (busy < self.concurrency or (
                    bool(self.batch_kinds) and len(batches) < self.batches
                    and not share_taken))
                if claimed and room:
                    continue  # maybe more are due
                await self._wait(singles | batches, room, self.urgent if batches else None,
                                 self.batch_kinds if share_taken else frozenset(),
                                 full=busy >= self.concurrency)
                singles = {task for task in singles if not task.done()}
                batches = {task for task in batches if not task.done()}
        finally:
            if singles or batches:
                await asyncio.gather(*singles, *batches, return_exceptions=True)

    def _start(self, jobs: list[ClaimedJob]) -> list[asyncio.Task[None]]:
        """A task per claimed job, but one for all of them of the ``group_kinds``."""
        grouped = [job for job in jobs if job.kind in self.group_kinds]
        tasks = [self._track([job], self._execute(job))
                 for job in jobs if job.kind not in self.group_kinds]
        if grouped:
            group = self._track(grouped, self._execute_batch(grouped, self.group_handler))
            self._sizes[group] = min(len(grouped), max(1, self.concurrency // 2))
            group.add_done_callback(lambda done: self._sizes.pop(done, None))
            tasks.append(group)
        return tasks

    async def _more_of_group(self, jobs: list[ClaimedJob], limit: int,
                             batches: bool) -> list[ClaimedJob]:
        """A claim that took all it could of a queue of notices (a backlog): more of the
        ``group_kinds`` for its group, so a backlog costs few claims and transactions."""
        grouped = sum(1 for job in jobs if job.kind in self.group_kinds)
        if not grouped or len(jobs) < limit or grouped >= self.group_size:
            return []
        return await self.queue.claim(self.group_size - grouped, kinds=self.group_kinds,
                                      max_priority=self.urgent if batches else None,
                                      running=self._running_ids())

    def _track(self, jobs: list[ClaimedJob], work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        ids = {job.id for job in jobs}
        self._running.update(ids)

        def finished(done: asyncio.Task[None]) -> None:
            self._in_flight.discard(done)
            self._running.difference_update(ids)

        task.add_done_callback(finished)
        return task

    async def _claim_batch(self) -> SharedClaim:
        """Claim jobs of the batch kinds: up to ``batch_size``, or with other live replicas
        about this worker's share of the burst due (so they work it together)."""
        live = self.live() if self.live is not None else 1
        share = Share(live, self._held, self.share_floor)
        return await self.queue.claim_share(self.batch_size, share, kinds=self.batch_kinds,
                                            running=self._running_ids(),
                                            max_priority=self.urgent)

    def _hold(self, jobs: list[ClaimedJob], task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Count ``jobs`` as this worker's part of a burst until ``task`` ends."""
        self._held += len(jobs)

        def released(_: asyncio.Task[None]) -> None:
            self._held -= len(jobs)

        task.add_done_callback(released)
        return task

    def _running_ids(self) -> frozenset[int]:
        """Jobs this worker runs now: never claimed again while they run, even when their
        lease ran out meanwhile (a slow call; a clock moved on) — another worker may."""
        return frozenset(self._running)

    async def _wait(self, tasks: set[asyncio.Task[None]], room: bool,
                    max_priority: int | None, besides: frozenset[str] = frozenset(),
                    full: bool = False) -> None:
        """Until a job ends, or, with room for more, until the next job (that may start; of
        the kinds ``besides``, only one not due yet) is due or a commit enqueues one (so a job
        due while others run starts on time). ``full``: only batches have room, so only the
        next job of the batch kinds counts (the others due now wait for a job to end)."""
        if not room:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return
        if full:
            later = await self.queue.next_due_later(self.batch_kinds)
            self._looked_at = time.monotonic()
            delay = self.max_sleep if later is None else min(max(
                (later - self.queue.clock.now()).total_seconds(), _MIN_SLEEP), self.max_sleep)
            besides = frozenset()
        else:
            delay = await self._sleep_seconds(max_priority, self._running_ids(), besides)
        if besides:  # its share runs: the next job of those kinds that comes due wakes it
            later = await self.queue.next_due_later(besides)
            if later is not None:
                wait = (later - self.queue.clock.now()).total_seconds()
                delay = min(delay, max(wait, _MIN_SLEEP))
        waker = asyncio.ensure_future(self._woken.wait())
        try:
            await asyncio.wait({*tasks, waker}, timeout=delay,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()

    async def wait_idle(self) -> bool:
        """Wait for every job this worker is running (from any ``run_due``, the loop's
        included) to finish; returns whether there were any."""
        if not self._in_flight:
            return False
        await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        return True

    async def _execute(self, job: ClaimedJob) -> None:
        """Run one job and record its outcome; never raises (a lost write is retried later,
        when the lease expires). Its log lines carry the job and the activation it is about."""
        about = job.payload.get("request_id")
        with bound(request_id=f"job-{job.id}", activation_id=str(about) if about else None):
            await self._run_and_record(job)

    async def _execute_batch(self, jobs: list[ClaimedJob],
                             group: BatchHandler | None = None) -> None:
        """Run a batch (with ``group``: a group of the ``group_kinds``, which does not hold
        back other jobs) and record every job's outcome (the successes in one transaction,
        with the other jobs ending then); never raises."""
        handler = group or self.batch_handler
        assert handler is not None
        with bound(request_id=f"jobs-{jobs[0].id}+{len(jobs) - 1}"):
            counted = 0 if group else 1
            self._batches_running += counted
            try:
                outcomes = await handler(jobs)
            except Exception as exc:
                log.exception("batch of %d %s jobs failed", len(jobs), jobs[0].kind)
                outcomes = [(job, exc) for job in jobs]
            finally:
                self._batches_running -= counted
            succeeded = [job for job, error in outcomes if error is None]
            try:
                done = await self.completions.complete(succeeded)
                await self._report_lost([job for job in succeeded if job.id not in done])
            except Exception:
                log.exception("could not record a batch of %d jobs", len(outcomes))
            for job, error in outcomes:
                if error is not None:
                    about = job.payload.get("request_id")
                    with bound(request_id=f"job-{job.id}",
                               activation_id=str(about) if about else None):
                        await self._record(job, error)

    async def _run_and_record(self, job: ClaimedJob) -> None:
        try:
            await self.handler(job)
        except Exception as exc:
            await self._record(job, exc)
            return
        try:
            if not await self.completions.complete([job]):
                await self._report_lost([job])
        except Exception:
            log.exception("job %s (%s): could not record the outcome", job.id, job.kind)

    async def _report_lost(self, lost: list[ClaimedJob]) -> None:
        """Jobs that ran but whose completion found their lease gone. One brought back to the
        queue while it ran (a redraw asked for again) runs once more, as meant: no warning;
        one another worker took over after its lease ran out is worth one."""
        if not lost:
            return
        try:
            requeued = await self.queue.requeued_ids([job.id for job in lost])
        except Exception:
            requeued = set()
        taken = [job for job in lost if job.id not in requeued]
        if len(requeued):
            log.debug("%d jobs queued again while they ran: they run once more", len(requeued))
        if len(taken) == 1:
            log.warning("job %s (%s): lease lost before completion", taken[0].id, taken[0].kind)
        elif taken:
            log.warning("%d of %d jobs: lease lost before completion", len(taken), len(lost))

    async def _record(self, job: ClaimedJob, error: Exception) -> None:
        """A job that did not complete: wait, fail for good, or retry after a backoff."""
        try:
            if isinstance(error, RetryLater):
                log.info("job %s (%s) waits %s: %s", job.id, job.kind, error.after,
                         _brief(error))
                await self.queue.defer(job, error.after, _describe(error))
            elif isinstance(error, PermanentJobError):
                log.warning("job %s (%s) failed permanently: %s", job.id, job.kind,
                            _brief(error))
                await self.queue.fail(job, _describe(error), permanent=True)
            else:
                log.warning("job %s (%s) failed on attempt %d: %s", job.id, job.kind,
                            job.attempts + 1, _brief(error))
                await self.queue.fail(job, _describe(error))
        except Exception:
            log.exception("job %s (%s): could not record the outcome", job.id, job.kind)

    async def run(self) -> None:
        """The loop: run due jobs, sleep until the next is due (at most ``max_sleep``) or until
        woken; returns after ``stop()`` once in-flight jobs are done."""
        self.running = True
        self._stopped.clear()
        try:
            while not self._stopping:
                self._woken.clear()
                self.last_tick = self.queue.clock.now()
                delay = await self._tick()
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), timeout=delay)
        finally:
            self.running = False
            self._stopped.set()

    async def _tick(self) -> float:
        """Run what is due; return how long to sleep before the next look."""
        try:
            await self.run_due()
            return await self._sleep_seconds()
        except Exception:
            log.exception("scheduler tick failed; retrying in %.1fs", self.max_sleep)
            return self.max_sleep

    async def _sleep_seconds(self, max_priority: int | None = None,
                             running: frozenset[int] = frozenset(),
                             besides: frozenset[str] = frozenset()) -> float:
        next_due = await self.queue.next_due_at(max_priority, running, besides)
        self._looked_at = time.monotonic()  # the queue answered
        if next_due is None:
            return self.max_sleep
        wait = (next_due - self.queue.clock.now()).total_seconds()
        return min(max(wait, _MIN_SLEEP), self.max_sleep)

    async def stop(self) -> None:
        """Stop claiming, let in-flight jobs finish, and return once the loop has ended."""
        self._stopping = True
        self._woken.set()
        if self.running:
            await self._stopped.wait()


def _brief(exc: BaseException) -> str:
    """An exception for a log line: its type and a bounded message (never the job payload)."""
    return _describe(exc)[:_MAX_LOGGED_ERROR]


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
