"""The durable job queue: enqueue inside a transaction (outbox), claim under a lease, retry.

A job is claimed by setting ``lease_owner`` and ``lease_expires_at`` in one transaction
(PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``; SQLite: the single writer makes the select
and update atomic), so replicas never run the same job at once. Completing or failing a job
is a compare-and-set on the lease it was claimed with: a worker whose lease expired and was
taken over cannot complete the job a second time. Handlers must still be idempotent: a worker
that dies mid-job leaves the job to be run again once its lease expires.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.ports import Clock
from pimbot.scheduling import job_statements as statements
from pimbot.scheduling.job_statements import JobStatus as JobStatus
from pimbot.scheduling.retry import RetryPolicy
from pimbot.scheduling.sharing import Share
from pimbot.store.database import Database
from pimbot.store.prepared import Prepared, run, run_many

log = logging.getLogger(__name__)

ENQUEUED_FLAG = "pimbot_jobs_enqueued"
ENQUEUED_PRIORITY = "pimbot_jobs_enqueued_priority"  # the most urgent one (absent: 0)
MAX_ERROR_CHARS = 2000
_INSERT_CHUNK = 500  # rows per multi-row statement (SQLite allows 32,766 parameters)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds the lease on. ``attempts`` counts earlier failed runs."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    due_at: datetime
    lease_until: datetime | None = None  # the lease this claim holds (compare-and-set token)
    max_attempts: int = 20


@dataclass(frozen=True)
class SharedClaim:
    """What ``claim_share`` leased, and whether this worker already runs its share of the
    jobs due (then it looks again when one of its batches ends, not when the next is due)."""

    jobs: list[ClaimedJob]
    share_taken: bool


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    due_at: datetime,
    *,
    dedupe_key: str | None = None,
    max_attempts: int = 20,
    priority: int = 5,
) -> bool:
    """Write a job in the caller's transaction; it runs only if that transaction commits.

    With a ``dedupe_key`` that a *queued* job already has, nothing is written; a job that has
    run (done or failed, whether it found work or not) frees its key, so a key never stops a
    job that is needed later. Returns whether a job was written. ``payload`` must be JSON and
    must not hold secrets (it is stored in clear).
    """
    return await enqueue_many(session, [NewJob(kind, payload, due_at, dedupe_key,
                                               max_attempts, priority)]) > 0


@dataclass(frozen=True)
class NewJob:
    """One job for ``enqueue_many`` (the arguments of ``enqueue``)."""

    kind: str
    payload: dict[str, Any]
    due_at: datetime
    dedupe_key: str | None = None
    max_attempts: int = 20
    priority: int = 5


async def enqueue_many(session: AsyncSession, jobs: Sequence[NewJob]) -> int:
    """``enqueue`` for several jobs in multi-row ``INSERT``s (one round trip per 500 jobs,
    however many approvers and channels a change tells, or expiries a batch ends); the same
    rules per job, a queued job's ``dedupe_key`` included. Returns how many were written."""
    if not jobs:
        return 0
    if any(job.due_at.tzinfo is None for job in jobs):
        raise ValueError("naive due_at; pimbot keeps aware UTC times only")
    # One statement built once per dialect (``job_statements``): SQLAlchemy sends the rows
    # as multi-row VALUES pages ("insertmanyvalues"), and RETURNING says which were written
    # (a queued job with the same dedupe_key keeps its place).
    statement = _inserts(session).new
    return await _insert_pages(session, statement, [_row(job) for job in jobs], jobs)


async def enqueue_again(session: AsyncSession, jobs: Sequence[NewJob]) -> int:
    """``enqueue_many`` for keyed jobs of which one queued copy is enough, even while it runs
    (a redraw: the running one may have read the state before the caller's change). A job
    whose ``dedupe_key`` a queued job has is not written again; instead that job loses its
    lease and comes due by the earlier of the two times. A run of it in flight then cannot
    complete it (a completion is a compare-and-set on the lease), so it runs once more after
    that run ends (a worker never claims a job it is running). Returns how many jobs were
    written or brought back."""
    if any(job.dedupe_key is None for job in jobs):
        raise ValueError("enqueue_again needs a dedupe_key for every job")
    if any(job.due_at.tzinfo is None for job in jobs):
        raise ValueError("naive due_at; pimbot keeps aware UTC times only")
    by_key = {job.dedupe_key: job for job in sorted(jobs, key=lambda j: j.due_at, reverse=True)}
    if not by_key:
        return 0
    return await _insert_pages(session, _inserts(session).again,
                               [_row(job) for job in by_key.values()], jobs)


def _inserts(session: AsyncSession) -> statements.Inserts:
    return statements.INSERTS[session.get_bind().dialect.name]


def _row(job: NewJob) -> dict[str, Any]:
    return {"kind": job.kind, "payload": job.payload, "due_at": job.due_at,
            "status": JobStatus.QUEUED.value, "attempts": 0, "max_attempts": job.max_attempts,
            "priority": job.priority, "last_error": "", "dedupe_key": job.dedupe_key}


async def _insert_pages(session: AsyncSession, statement: Prepared,
                        rows: list[dict[str, Any]], jobs: Sequence[NewJob]) -> int:
    """Run ``statement`` (an INSERT … RETURNING) over ``rows`` a page at a time; the number
    of rows it returned (written or brought back). The worker is woken if any were."""
    written = 0
    for start in range(0, len(rows), _INSERT_CHUNK):
        written += len((await run_many(session, statement,
                                       rows[start:start + _INSERT_CHUNK])).rows)
    if written > 0:
        _enqueued(session, min(job.priority for job in jobs))
    return written


def _enqueued(session: AsyncSession, priority: int) -> None:
    """Tell this process's worker, on commit, that jobs were written (and how urgent)."""
    session.info[ENQUEUED_FLAG] = True
    session.info[ENQUEUED_PRIORITY] = min(priority, session.info.get(ENQUEUED_PRIORITY, priority))


async def discard(session: AsyncSession, dedupe_keys: list[str], now: datetime) -> int:
    """Mark the queued, unleased jobs with these keys done, in the caller's transaction (the
    work they promised was done by whoever calls this). Returns how many."""
    done = 0
    for start in range(0, len(dedupe_keys), _INSERT_CHUNK):
        done += (await run(session, statements.discard(_on_sqlite(session)), {
            "keys": dedupe_keys[start:start + _INSERT_CHUNK], "now": now})).rowcount
    return done


async def reschedule(session: AsyncSession, dedupe_key: str, due_at: datetime) -> bool:
    """Bring the queued job with ``dedupe_key`` forward (or back) to ``due_at``, in the
    caller's transaction; wakes this process's worker on commit. Returns whether one moved."""
    return await reschedule_many(session, [dedupe_key], due_at) > 0


async def reschedule_many(session: AsyncSession, dedupe_keys: list[str], due_at: datetime) -> int:
    """``reschedule`` for many keys (in chunks); returns how many moved."""
    moved = 0
    for start in range(0, len(dedupe_keys), _INSERT_CHUNK):
        moved += (await run(session, statements.reschedule(_on_sqlite(session)), {
            "keys": dedupe_keys[start:start + _INSERT_CHUNK], "due": due_at})).rowcount
    if moved:
        session.info[ENQUEUED_FLAG] = True
    return moved


def _on_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _claim_params(now: datetime, kinds: frozenset[str] | None, besides: frozenset[str],
                  max_priority: int | None, running: frozenset[int], *,
                  on_sqlite: bool) -> tuple[statements.ClaimShape, dict[str, Any]]:
    """Which filters a look uses, and their values (``job_statements.claimable``)."""
    params: dict[str, Any] = {"now": now}
    if kinds is not None:
        params["kinds"] = sorted(kinds)
    if besides:
        params["besides"] = sorted(besides)
    if max_priority is not None and on_sqlite:
        params["priorities"] = list(range(max_priority + 1))
    elif max_priority is not None:
        params["max_priority"] = max_priority
    if running:
        ids = sorted(running)
        params["running"] = json.dumps(ids) if on_sqlite else ids
    shape = statements.ClaimShape(kinds is not None, bool(besides), max_priority,
                                  bool(running), on_sqlite)
    return shape, params


class JobQueue:
    """Claims, completes and reschedules jobs on behalf of one worker (``owner``)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        owner: str,
        lease: timedelta = timedelta(seconds=60),
        retry: RetryPolicy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.lease = lease
        self.retry = retry or RetryPolicy()

    async def claim(self, limit: int = 20, *, kinds: frozenset[str] | None = None,
                    besides: frozenset[str] = frozenset(),
                    max_priority: int | None = None,
                    running: frozenset[int] = frozenset()) -> list[ClaimedJob]:
        """Lease up to ``limit`` due jobs (lowest priority number, then oldest due, first):
        only of ``kinds`` when given, never of ``besides``, none whose priority number is
        above ``max_priority``, none this worker is ``running`` (whatever its lease says).
        One statement leases them all."""
        now = self.clock.now()
        shape, params = _claim_params(now, kinds, besides, max_priority, running,
                                      on_sqlite=self.db.is_sqlite)
        async with self.db.transaction() as session:
            return await self._lease(session, shape, params | {"limit": limit}, now)

    async def claim_share(self, limit: int, share: Share, *, kinds: frozenset[str],
                          running: frozenset[int] = frozenset(),
                          max_priority: int | None = None) -> SharedClaim:
        """``claim`` of ``kinds`` for a worker that shares bursts with other replicas: it
        takes about its ``share`` of the jobs of ``kinds`` due now (``scheduling/sharing.py``),
        counted in the same transaction; alone (``share.live`` 1), exactly ``claim``.
        ``max_priority``: the least urgent of ``kinds`` (as in ``claim``), so the claim seeks
        those priorities' due rows rather than reading every due job of other kinds."""
        if not share.shared:
            return SharedClaim(await self.claim(limit, kinds=kinds, running=running,
                                                max_priority=max_priority), False)
        now = self.clock.now()
        shape, params = _claim_params(now, kinds, frozenset(), max_priority, running,
                                      on_sqlite=self.db.is_sqlite)
        async with self.db.transaction() as session:
            due = (await run(session, statements.DUE_NOW,
                             {"now": now, "kinds": sorted(kinds)})).scalar()
            size = share.claim_size(int(due or 0), limit)
            if size == 0:
                return SharedClaim([], share.held > 0)
            return SharedClaim(await self._lease(session, shape, params | {"limit": size},
                                                 now), False)

    async def _lease(self, session: AsyncSession, shape: statements.ClaimShape,
                     params: dict[str, Any], now: datetime) -> list[ClaimedJob]:
        """Read the jobs ``claimable(shape)`` finds and lease them, in the caller's
        transaction (two statements, each built once)."""
        until = now + self.lease
        rows = (await run(session, statements.claimable(shape), params)).rows
        if rows:
            await run(session, statements.LEASE, {
                "ids": [row[0] for row in rows], "owner": self.owner, "until": until})
        # statements.CLAIMED_COLUMNS: id, kind, payload, attempts, due_at, max_attempts
        return [ClaimedJob(job_id, kind, dict(payload), attempts, due_at, until, max_attempts)
                for job_id, kind, payload, attempts, due_at, max_attempts in rows]

    async def complete(self, job: ClaimedJob) -> bool:
        """Mark the job done if this owner still holds the lease it was claimed with."""
        done = await self._finish(
            job,
            status=JobStatus.DONE.value,
            finished_at=self.clock.now(),
            lease_owner=None,
            lease_expires_at=None,
        )
        if not done:
            log.warning("job %s (%s): lease lost before completion", job.id, job.kind)
        return done

    async def complete_many(self, jobs: list[ClaimedJob]) -> int:
        """``complete`` for many jobs in one transaction; returns how many were still ours."""
        done = len(await self.complete_ids(jobs))
        if done < len(jobs):
            log.warning("%d of %d jobs: lease lost before completion", len(jobs) - done,
                        len(jobs))
        return done

    async def complete_ids(self, jobs: list[ClaimedJob]) -> set[int]:
        """``complete`` for many jobs in one transaction; returns the ids that were done (the
        others' leases were lost). One statement per lease they were claimed with."""
        if not jobs:
            return set()
        now = self.clock.now()
        done: set[int] = set()
        by_lease: dict[datetime | None, list[int]] = {}
        for job in jobs:
            by_lease.setdefault(job.lease_until, []).append(job.id)
        async with self.db.transaction() as session:
            for until, ids in by_lease.items():
                statement = statements.complete(until is None)
                for start in range(0, len(ids), _INSERT_CHUNK):
                    done.update((await run(session, statement, {
                        "ids": ids[start:start + _INSERT_CHUNK], "owner": self.owner,
                        "until": until, "now": now})).scalars())
        return done

    async def requeued_ids(self, ids: list[int]) -> set[int]:
        """Of jobs whose completion found their lease gone, those brought back to the queue
        while they ran (``enqueue_again``: queued, no lease), which run once more as meant;
        the others were taken over by another worker after their lease ran out."""
        if not ids:
            return set()
        async with self.db.read() as session:
            return set((await run(session, statements.REQUEUED, {"ids": ids})).scalars())

    async def fail(self, job: ClaimedJob, error: str, *, permanent: bool = False) -> bool:
        """Record a failed run: retry after a backoff, or fail for good (``permanent`` or out of
        attempts). Returns False if the lease was lost (someone else now owns the job)."""
        now = self.clock.now()
        attempts = job.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": error[:MAX_ERROR_CHARS],
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if permanent or attempts >= job.max_attempts:
            values.update(status=JobStatus.FAILED.value, finished_at=now)
        else:
            values["due_at"] = now + self.retry.delay(attempts)
        return await self._finish(job, **values)

    async def defer(self, job: ClaimedJob, after: timedelta, reason: str) -> bool:
        """Run the job again after ``after`` without counting an attempt (it waited, it did
        not fail). Returns False if the lease was lost."""
        return await self._finish(job, due_at=self.clock.now() + after, lease_owner=None,
                                  lease_expires_at=None, last_error=reason[:MAX_ERROR_CHARS])

    async def _finish(self, job: ClaimedJob, **values: Any) -> bool:
        """Set ``values`` on the job if this owner still holds the lease it was claimed with
        (a compare-and-set); whether it did."""
        statement = statements.finish(tuple(sorted(values)), job.lease_until is None)
        params = {"job_id": job.id, "owner": self.owner, "until": job.lease_until,
                  **{f"new_{name}": value for name, value in values.items()}}
        async with self.db.transaction() as session:
            return (await run(session, statement, params)).rowcount == 1

    async def next_due_later(self, kinds: frozenset[str]) -> datetime | None:
        """When the next queued job of ``kinds`` that is not due yet comes due (a worker that
        runs its share of what is due now waits for that, not for what it left to others)."""
        async with self.db.read() as session:
            result: datetime | None = (await run(session, statements.NEXT_LATER, {
                "kinds": sorted(kinds), "now": self.clock.now()})).scalar()
        return result

    async def next_due_at(self, max_priority: int | None = None,
                          running: frozenset[int] = frozenset(),
                          besides: frozenset[str] = frozenset()) -> datetime | None:
        """When the next job (of priority ``max_priority`` or more urgent, not one this worker
        is ``running``, of none of the kinds ``besides``) can be claimed: its due time, or
        when a held lease expires."""
        now = self.clock.now()
        shape, params = _claim_params(now, None, besides, max_priority, running,
                                      on_sqlite=self.db.is_sqlite)
        async with self.db.read() as session:  # both in one statement
            found = (await run(session, statements.next_due(shape), params)).rows[0]
        times = [t for t in found if t is not None]
        return min(times) if times else None
