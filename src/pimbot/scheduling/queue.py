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
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    all_,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pimbot.ports import Clock
from pimbot.scheduling.retry import RetryPolicy
from pimbot.scheduling.sharing import Share
from pimbot.store.database import Database
from pimbot.store.tables import JobRow

log = logging.getLogger(__name__)

ENQUEUED_FLAG = "pimbot_jobs_enqueued"
ENQUEUED_PRIORITY = "pimbot_jobs_enqueued_priority"  # the most urgent one (absent: 0)
MAX_ERROR_CHARS = 2000
_INSERT_CHUNK = 500  # rows per multi-row statement (SQLite allows 32,766 parameters)


class JobStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


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
    if due_at.tzinfo is None:
        raise ValueError("naive due_at; pimbot keeps aware UTC times only")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(JobRow)
        .values(
            kind=kind,
            payload=payload,
            due_at=due_at,
            status=JobStatus.QUEUED.value,
            attempts=0,
            max_attempts=max_attempts,
            priority=priority,
            last_error="",
            dedupe_key=dedupe_key,
        )
        .on_conflict_do_nothing(index_elements=[JobRow.dedupe_key],
                                index_where=text("status = 'queued'"))
    )
    result = await session.execute(statement)
    written = _rowcount(result) > 0
    if written:
        _enqueued(session, priority)
    return written


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
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement, compiled once and cached: SQLAlchemy sends the rows as multi-row
    # VALUES pages ("insertmanyvalues"), and RETURNING says which were written (a queued
    # job with the same dedupe_key keeps its place). A statement built with .values([...])
    # instead is compiled again for every batch: ~1 ms per row of CPU.
    statement = (
        insert(JobRow)
        .on_conflict_do_nothing(index_elements=[JobRow.dedupe_key],
                                index_where=text("status = 'queued'"))
        .returning(JobRow.id)
    )
    rows = [_row(job) for job in jobs]
    # Rows with and without a dedupe_key go in separate pages (SQLAlchemy sends a page per
    # run of rows whose NULLs fall alike): keyed ones first, each group in its order.
    rows.sort(key=lambda row: row["dedupe_key"] is None)
    return await _insert_pages(session, statement, rows, jobs)


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
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(JobRow)
    statement = insert.on_conflict_do_update(
        index_elements=[JobRow.dedupe_key], index_where=text("status = 'queued'"),
        # NULL as a literal, not a bound None: a SET clause with parameters of its own is
        # not sent as multi-row VALUES pages, so every redraw was a statement of its own
        # (two per expiry of a batch).
        set_={"lease_owner": null(), "lease_expires_at": null(),
              "due_at": case((insert.excluded.due_at < JobRow.due_at, insert.excluded.due_at),
                             else_=JobRow.due_at)},
    ).returning(JobRow.id)
    return await _insert_pages(session, statement, [_row(job) for job in by_key.values()],
                               jobs)


def _row(job: NewJob) -> dict[str, Any]:
    return {"kind": job.kind, "payload": job.payload, "due_at": job.due_at,
            "status": JobStatus.QUEUED.value, "attempts": 0, "max_attempts": job.max_attempts,
            "priority": job.priority, "last_error": "", "dedupe_key": job.dedupe_key}


async def _insert_pages(session: AsyncSession, statement: Any, rows: list[dict[str, Any]],
                        jobs: Sequence[NewJob]) -> int:
    """Run ``statement`` (an INSERT … RETURNING) over ``rows`` a page at a time; the number
    of rows it returned (written or brought back). The worker is woken if any were."""
    written = 0
    for start in range(0, len(rows), _INSERT_CHUNK):
        result = await session.execute(statement, rows[start:start + _INSERT_CHUNK])
        written += len(result.all())
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
        result = await session.execute(
            update(JobRow)
            .where(JobRow.dedupe_key.in_(dedupe_keys[start:start + _INSERT_CHUNK]),
                   _queued_by_key(session), _is_free(now))
            .values(status=JobStatus.DONE.value, finished_at=now)
            .execution_options(synchronize_session=False))
        done += _rowcount(result)
    return done


async def reschedule(session: AsyncSession, dedupe_key: str, due_at: datetime) -> bool:
    """Bring the queued job with ``dedupe_key`` forward (or back) to ``due_at``, in the
    caller's transaction; wakes this process's worker on commit. Returns whether one moved."""
    result = await session.execute(
        update(JobRow)
        .where(JobRow.dedupe_key == dedupe_key, _queued_by_key(session))
        .values(due_at=due_at)
        .execution_options(synchronize_session=False)
    )
    moved = _rowcount(result) > 0
    if moved:
        session.info[ENQUEUED_FLAG] = True
    return moved


async def reschedule_many(session: AsyncSession, dedupe_keys: list[str], due_at: datetime) -> int:
    """``reschedule`` for many keys (in chunks); returns how many moved."""
    moved = 0
    for start in range(0, len(dedupe_keys), _INSERT_CHUNK):
        result = await session.execute(
            update(JobRow)
            .where(JobRow.dedupe_key.in_(dedupe_keys[start:start + _INSERT_CHUNK]),
                   _queued_by_key(session))
            .values(due_at=due_at)
            .execution_options(synchronize_session=False))
        moved += _rowcount(result)
    if moved:
        session.info[ENQUEUED_FLAG] = True
    return moved


def _queued_by_key(session: AsyncSession) -> ColumnElement[bool]:
    """``status = 'queued'`` for a look-up by ``dedupe_key``, so that the partial unique index
    on ``dedupe_key`` (``WHERE status = 'queued'``) answers it: written as that literal (a
    partial index serves only a WHERE that implies its condition as written) and, on SQLite,
    marked ``likely`` (true for most rows) so its planner does not walk the status index
    instead. ``status = ?`` read every queued job at each ``discard`` of a batch's revoke
    jobs: 25-50 ms with 10,000 expiries queued and 30,000 notices, where the seek is 0.02 ms."""
    queued = JobRow.status == literal_column("'queued'")
    if session.get_bind().dialect.name == "sqlite":
        return func.likely(queued)
    return queued


def _at_most(max_priority: int, sqlite: bool) -> ColumnElement[bool]:
    """``priority <= max_priority``; on SQLite as the list of the priorities it allows
    (priorities are small non-negative numbers, 0 the most urgent), so that its planner seeks
    the index on (status, priority, due_at) once per priority for the due rows, in order. As
    a range it read every queued job of those priorities (10,000 expiries not due yet in a
    steady stream) at each look: 10-40 ms where the seek takes 0.1 ms. PostgreSQL keeps the
    range: it bounds its index scan by it, where a list is only a filter."""
    if sqlite:
        return JobRow.priority.in_(list(range(max_priority + 1)))
    return JobRow.priority <= max_priority


def _rowcount(result: Result[Any]) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


def _is_free(now: datetime) -> ColumnElement[bool]:
    return or_(JobRow.lease_expires_at.is_(None), JobRow.lease_expires_at <= now)


def _not_running(running: frozenset[int], sqlite: bool) -> ColumnElement[bool]:
    """``id NOT IN running`` with the ids as one parameter (a JSON list read by
    ``json_each`` on SQLite, an array on PostgreSQL): the statement's text is the same however
    many jobs run, so it is compiled once and cached. As a list of N parameters it was
    rendered and parsed afresh at every look: ~5 ms of CPU each with 1,000 expiries running."""
    ids = sorted(running)
    if sqlite:
        listed: Select[Any] = select(literal_column("value")).select_from(
            func.json_each(bindparam(None, json.dumps(ids))))
        return JobRow.id.not_in(listed)
    return JobRow.id != all_(cast(bindparam(None, ids), postgresql.ARRAY(BigInteger)))


def _claimable(now: datetime, kinds: frozenset[str] | None, besides: frozenset[str],
               max_priority: int | None, running: frozenset[int], *,
               sqlite: bool) -> Select[JobRow]:
    """The due, unleased queued jobs a claim may take, most urgent first, locked as read
    (PostgreSQL skips the rows another claim holds)."""
    query = (
        select(JobRow)
        .where(JobRow.status == JobStatus.QUEUED.value, JobRow.due_at <= now, _is_free(now))
        .order_by(JobRow.priority, JobRow.due_at, JobRow.id)
        .with_for_update(skip_locked=True)
    )
    if kinds is not None:
        query = query.where(JobRow.kind.in_(sorted(kinds)))
    if besides:
        query = query.where(JobRow.kind.not_in(sorted(besides)))
    if max_priority is not None:
        query = query.where(_at_most(max_priority, sqlite))
    if running:
        query = query.where(_not_running(running, sqlite))
    return query


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
        query = _claimable(now, kinds, besides, max_priority, running,
                           sqlite=self.db.is_sqlite).limit(limit)
        async with self.db.transaction() as session:
            return await self._lease(session, query, now)

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
        due_now = select(func.count()).select_from(JobRow).where(
            JobRow.status == JobStatus.QUEUED.value, JobRow.due_at <= now,
            JobRow.kind.in_(sorted(kinds)))
        async with self.db.transaction() as session:
            size = share.claim_size(int(await session.scalar(due_now) or 0), limit)
            if size == 0:
                return SharedClaim([], share.held > 0)
            query = _claimable(now, kinds, frozenset(), max_priority, running,
                               sqlite=self.db.is_sqlite).limit(size)
            return SharedClaim(await self._lease(session, query, now), False)

    async def _lease(self, session: AsyncSession, query: Select[JobRow],
                     now: datetime) -> list[ClaimedJob]:
        until = now + self.lease
        rows = (await session.execute(query)).scalars().all()
        if rows:
            await session.execute(
                update(JobRow).where(JobRow.id.in_([row.id for row in rows]))
                .values(lease_owner=self.owner, lease_expires_at=until)
                .execution_options(synchronize_session=False))
        return [
            ClaimedJob(
                row.id, row.kind, dict(row.payload), row.attempts, row.due_at, until,
                row.max_attempts,
            )
            for row in rows
        ]

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
                for start in range(0, len(ids), _INSERT_CHUNK):
                    result = await session.execute(
                        update(JobRow)
                        .where(JobRow.id.in_(ids[start:start + _INSERT_CHUNK]),
                               JobRow.status == JobStatus.QUEUED.value,
                               JobRow.lease_owner == self.owner,
                               JobRow.lease_expires_at == until)
                        .values(status=JobStatus.DONE.value, finished_at=now, lease_owner=None,
                                lease_expires_at=None)
                        .returning(JobRow.id)
                        .execution_options(synchronize_session=False))
                    done.update(result.scalars())
        return done

    async def requeued_ids(self, ids: list[int]) -> set[int]:
        """Of jobs whose completion found their lease gone, those brought back to the queue
        while they ran (``enqueue_again``: queued, no lease), which run once more as meant;
        the others were taken over by another worker after their lease ran out."""
        if not ids:
            return set()
        async with self.db.read() as session:
            result = await session.execute(
                select(JobRow.id).where(JobRow.id.in_(ids),
                                        JobRow.status == JobStatus.QUEUED.value,
                                        JobRow.lease_owner.is_(None)))
            return set(result.scalars())

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
        statement = (
            update(JobRow)
            .where(
                JobRow.id == job.id,
                JobRow.status == JobStatus.QUEUED.value,
                JobRow.lease_owner == self.owner,
                JobRow.lease_expires_at == job.lease_until,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with self.db.transaction() as session:
            result = await session.execute(statement)
            return _rowcount(result) == 1

    async def next_due_later(self, kinds: frozenset[str]) -> datetime | None:
        """When the next queued job of ``kinds`` that is not due yet comes due (a worker that
        runs its share of what is due now waits for that, not for what it left to others)."""
        async with self.db.read() as session:
            result: datetime | None = await session.scalar(
                select(func.min(JobRow.due_at)).where(
                    JobRow.status == JobStatus.QUEUED.value, JobRow.kind.in_(sorted(kinds)),
                    JobRow.due_at > self.clock.now()))
        return result

    async def next_due_at(self, max_priority: int | None = None,
                          running: frozenset[int] = frozenset(),
                          besides: frozenset[str] = frozenset()) -> datetime | None:
        """When the next job (of priority ``max_priority`` or more urgent, not one this worker
        is ``running``, of none of the kinds ``besides``) can be claimed: its due time, or
        when a held lease expires."""
        now = self.clock.now()
        queued = JobRow.status == JobStatus.QUEUED.value
        if max_priority is not None:
            queued = and_(queued, _at_most(max_priority, self.db.is_sqlite))
        if running:
            queued = and_(queued, _not_running(running, self.db.is_sqlite))
        if besides:
            queued = and_(queued, JobRow.kind.not_in(sorted(besides)))
        free: ColumnElement[Any] = select(func.min(JobRow.due_at)).where(
            queued, _is_free(now)).scalar_subquery()
        if max_priority is not None and not self.db.is_sqlite:
            # The earliest of each priority's earliest: each a seek of (status, priority,
            # due_at) in due order. As one min() PostgreSQL walked the status and due index
            # from the oldest due job: through every notice waiting behind a batch (30,000
            # in a steady stream of expiries, 15-30 ms a look).
            free = func.least(*(select(func.min(JobRow.due_at)).where(
                queued, JobRow.priority == priority, _is_free(now)).scalar_subquery()
                for priority in range(max_priority + 1)))
        held = select(func.min(JobRow.lease_expires_at)).where(
            queued, JobRow.lease_expires_at > now)
        async with self.db.read() as session:  # both in one statement
            found = (await session.execute(select(free, held.scalar_subquery()))).one()
        times = [t for t in found if t is not None]
        return min(times) if times else None
