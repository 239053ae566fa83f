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
from pimbot.scheduling.queue import ENQUEUED_FLAG, ClaimedJob, JobQueue
from pimbot.scheduling.retry import PermanentJobError, RetryLater
from pimbot.store.database import Database

log = logging.getLogger(__name__)

JobHandler = Callable[[ClaimedJob], Awaitable[None]]
_MIN_SLEEP = 0.01
ALIVE_LOOKS = 5  # the loop is alive while it has looked at the queue within 5 max sleeps
_MAX_LOGGED_ERROR = 300


class Worker:
    """Runs a handler for every due job, up to ``concurrency`` at a time."""

    def __init__(
        self,
        queue: JobQueue,
        handler: JobHandler,
        *,
        max_sleep: float = 2.0,
        concurrency: int = 8,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.queue = queue
        self.handler = handler
        self.max_sleep = max_sleep
        self.concurrency = concurrency
        self.running = False
        self.last_tick: datetime | None = None
        self._woken = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()  # across every run_due call
        self._stopping = False
        self._stopped = asyncio.Event()
        self._looked_at = time.monotonic()  # the last time the loop claimed or slept

    def attach(self, db: Database) -> None:
        """Wake this worker after every commit on ``db`` that enqueued a job."""
        db.on_commit(self._after_commit)

    def _after_commit(self, session: AsyncSession) -> None:
        if session.info.get(ENQUEUED_FLAG):
            self.wake()

    def wake(self) -> None:
        self._woken.set()

    def alive(self) -> bool:
        """Running, and the loop looked at the queue within ``ALIVE_LOOKS`` of its longest
        sleep (a loop stuck on a database that does not answer is not alive)."""
        limit = max(self.max_sleep, 1.0) * ALIVE_LOOKS
        return self.running and time.monotonic() - self._looked_at <= limit

    async def run_due(self) -> int:
        """Claim and run every job due now (including ones that become due while running);
        return how many ran. In-flight jobs always finish before this returns."""
        ran = 0
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = self.concurrency - len(tasks)
                jobs = [] if self._stopping or free <= 0 else await self.queue.claim(free)
                self._looked_at = time.monotonic()
                started = [asyncio.create_task(self._execute(job)) for job in jobs]
                tasks.update(started)
                self._in_flight.update(started)
                for task in started:
                    task.add_done_callback(self._in_flight.discard)
                ran += len(jobs)
                if not tasks:
                    return ran
                if jobs and len(tasks) < self.concurrency:
                    continue  # maybe more are due
                _, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

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

    async def _run_and_record(self, job: ClaimedJob) -> None:
        try:
            try:
                await self.handler(job)
            except RetryLater as exc:
                log.info("job %s (%s) waits %s: %s", job.id, job.kind, exc.after, _brief(exc))
                await self.queue.defer(job, exc.after, _describe(exc))
            except PermanentJobError as exc:
                log.warning("job %s (%s) failed permanently: %s", job.id, job.kind, _brief(exc))
                await self.queue.fail(job, _describe(exc), permanent=True)
            except Exception as exc:
                log.warning(
                    "job %s (%s) failed on attempt %d: %s",
                    job.id, job.kind, job.attempts + 1, _brief(exc),
                )
                await self.queue.fail(job, _describe(exc))
            else:
                await self.queue.complete(job)
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

    async def _sleep_seconds(self) -> float:
        next_due = await self.queue.next_due_at()
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
