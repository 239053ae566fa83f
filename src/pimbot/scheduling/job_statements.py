"""The queue's SQL, built once per dialect against the jobs table (Core, not the ORM entity).

A statement built on every call (``insert(JobRow).on_conflict_do_nothing(…)``,
``update(JobRow).where(…)``) costs SQLAlchemy more CPU than running it: the clauses are
coerced and the cache key generated again each time, and an ORM insert or update goes
through the ORM's bulk machinery. Built once here, with every value a bound parameter, each
keeps its cache key and compiled form, and runs through the session as plain Core.
The values a statement holds as constants (``status = 'queued'``) are the rules, not data.

Shapes that vary (a claim with or without ``kinds``, a finish setting these columns) are
built once per shape (``functools.cache``). A lease compared with ``None`` needs ``IS NULL``
rather than ``= NULL``, so those statements come in two shapes as well.

Each is a ``pimbot.store.prepared.Prepared``: compiled once per dialect and run at the
session's driver connection in its transaction (``prepared.run``), ~5 µs of CPU on SQLite
where ``session.execute`` of the same statement took ~50.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Table,
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

from pimbot.store.prepared import Prepared
from pimbot.store.tables import JobRow


class JobStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


JOBS: Table = JobRow.__table__  # type: ignore[assignment]
QUEUED, DONE = JobStatus.QUEUED.value, JobStatus.DONE.value
# The partial unique index a queued job's dedupe_key is checked against (ON CONFLICT).
_QUEUED_KEY: dict[str, Any] = {"index_elements": [JOBS.c.dedupe_key],
                               "index_where": text("status = 'queued'")}
# The columns a new job is written with (the rest: defaults, or the database's).
NEW_JOB_COLUMNS = ("kind", "payload", "due_at", "status", "attempts", "max_attempts",
                   "priority", "last_error", "dedupe_key")
# What a claim reads of each job it leases.
CLAIMED_COLUMNS = (JOBS.c.id, JOBS.c.kind, JOBS.c.payload, JOBS.c.attempts, JOBS.c.due_at,
                   JOBS.c.max_attempts)


@dataclass(frozen=True)
class Inserts:
    """A dialect's two job INSERTs, each ``RETURNING id`` (the jobs written or brought back).

    ``new``: a queued job's ``dedupe_key`` keeps its place (``ON CONFLICT … DO NOTHING``).
    ``again``: that job loses its lease and comes due by the earlier time (``DO UPDATE``).
    """

    new: Prepared
    again: Prepared


def _inserts(dialect_insert: Callable[[Table], Any]) -> Inserts:
    base = dialect_insert(JOBS)
    new = base.on_conflict_do_nothing(**_QUEUED_KEY).returning(JOBS.c.id)
    # NULL as a literal, not a bound None: a SET clause with parameters of its own is not sent
    # as multi-row VALUES pages, so every redraw was a statement of its own (two per expiry
    # of a batch).
    again = base.on_conflict_do_update(
        **_QUEUED_KEY,
        set_={"lease_owner": null(), "lease_expires_at": null(),
              "due_at": case((base.excluded.due_at < JOBS.c.due_at, base.excluded.due_at),
                             else_=JOBS.c.due_at)},
    ).returning(JOBS.c.id)
    return Inserts(Prepared(new, keys=NEW_JOB_COLUMNS), Prepared(again, keys=NEW_JOB_COLUMNS))


INSERTS = {"sqlite": _inserts(sqlite.insert), "postgresql": _inserts(postgresql.insert)}


def _free() -> ColumnElement[bool]:
    """The job's lease is free at ``:now`` (never taken, or run out)."""
    return or_(JOBS.c.lease_expires_at.is_(None), JOBS.c.lease_expires_at <= bindparam("now"))


def _lease_is(none: bool) -> ColumnElement[bool]:
    """The job's lease is still ``:until`` (the compare-and-set of a completion)."""
    return JOBS.c.lease_expires_at.is_(None) if none else \
        JOBS.c.lease_expires_at == bindparam("until")


def _queued_by_key(on_sqlite: bool) -> ColumnElement[bool]:
    """``status = 'queued'`` for a look-up by ``dedupe_key``, so that the partial unique index
    on ``dedupe_key`` (``WHERE status = 'queued'``) answers it: written as that literal (a
    partial index serves only a WHERE that implies its condition as written) and, on SQLite,
    marked ``likely`` (true for most rows) so its planner does not walk the status index
    instead. ``status = ?`` read every queued job at each ``discard`` of a batch's revoke
    jobs: 25-50 ms with 10,000 expiries queued and 30,000 notices, where the seek is 0.02 ms."""
    queued = JOBS.c.status == literal_column("'queued'")
    return func.likely(queued) if on_sqlite else queued


@functools.cache
def discard(on_sqlite: bool) -> Prepared:
    """``discard``: the queued, unleased jobs with these keys are done (``:keys``, ``:now``)."""
    return Prepared(update(JOBS)
            .where(JOBS.c.dedupe_key.in_(bindparam("keys", expanding=True)),
                   _queued_by_key(on_sqlite), _free())
            .values(status=DONE, finished_at=bindparam("now")))


@functools.cache
def reschedule(on_sqlite: bool) -> Prepared:
    """``reschedule_many``: the queued jobs with these keys come due at ``:due``."""
    return Prepared(update(JOBS)
            .where(JOBS.c.dedupe_key.in_(bindparam("keys", expanding=True)),
                   _queued_by_key(on_sqlite))
            .values(due_at=bindparam("due")))


# ``claim``'s second half: the jobs it read get this worker's lease.
LEASE = Prepared(update(JOBS).where(JOBS.c.id.in_(bindparam("ids", expanding=True)))
                 .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("until")))
# ``requeued_ids``: of these, the ones queued again without a lease.
REQUEUED = Prepared(select(JOBS.c.id).where(JOBS.c.id.in_(bindparam("ids", expanding=True)),
                                            JOBS.c.status == QUEUED,
                                            JOBS.c.lease_owner.is_(None)))
# ``claim_share``: how many jobs of ``:kinds`` are due now, leased or not.
DUE_NOW = Prepared(select(func.count()).select_from(JOBS).where(
    JOBS.c.status == QUEUED, JOBS.c.due_at <= bindparam("now"),
    JOBS.c.kind.in_(bindparam("kinds", expanding=True))))
# ``next_due_later``: when the next queued job of ``:kinds`` not due yet comes due.
NEXT_LATER = Prepared(select(func.min(JOBS.c.due_at)).where(
    JOBS.c.status == QUEUED, JOBS.c.kind.in_(bindparam("kinds", expanding=True)),
    JOBS.c.due_at > bindparam("now")))


@functools.cache
def complete(lease_none: bool) -> Prepared:
    """``complete_ids``: these jobs are done if ``:owner`` still holds the lease they were
    claimed with (``:until``), ``RETURNING`` the ids that were."""
    return Prepared(update(JOBS)
            .where(JOBS.c.id.in_(bindparam("ids", expanding=True)), JOBS.c.status == QUEUED,
                   JOBS.c.lease_owner == bindparam("owner"), _lease_is(lease_none))
            .values(status=DONE, finished_at=bindparam("now"), lease_owner=None,
                    lease_expires_at=None)
            .returning(JOBS.c.id))


@functools.cache
def finish(columns: tuple[str, ...], lease_none: bool) -> Prepared:
    """``_finish``: one job's ``columns`` set to ``:new_<column>``, if ``:owner`` still
    holds the lease it was claimed with."""
    return Prepared(update(JOBS)
            .where(JOBS.c.id == bindparam("job_id"), JOBS.c.status == QUEUED,
                   JOBS.c.lease_owner == bindparam("owner"), _lease_is(lease_none))
            .values({name: bindparam(f"new_{name}", type_=JOBS.c[name].type)
                     for name in columns}))


def _not_running(on_sqlite: bool) -> ColumnElement[bool]:
    """``id NOT IN :running`` with the ids as one parameter (a JSON list read by
    ``json_each`` on SQLite, an array on PostgreSQL): the statement's text is the same
    however many jobs run. As a list of N parameters it was rendered and parsed afresh at
    every look: ~5 ms of CPU each with 1,000 expiries running."""
    if on_sqlite:
        listed: Select[Any] = select(literal_column("value")).select_from(
            func.json_each(bindparam("running")))
        return JOBS.c.id.not_in(listed)
    return JOBS.c.id != all_(cast(bindparam("running"), postgresql.ARRAY(BigInteger)))


@dataclass(frozen=True)
class ClaimShape:
    """Which of ``claim``'s filters a look uses (each one's values are parameters)."""

    kinds: bool  # :kinds
    besides: bool  # :besides
    max_priority: int | None  # :max_priority on PostgreSQL, :priorities on SQLite
    running: bool  # :running
    on_sqlite: bool


def _at_most(shape: ClaimShape) -> ColumnElement[bool]:
    """``priority <= max_priority``; on SQLite as the list of the priorities it allows
    (``:priorities``: priorities are small non-negative numbers, 0 the most urgent), so that
    its planner seeks the index on (status, priority, due_at) once per priority for the due
    rows, in order. As a range it read every queued job of those priorities (10,000 expiries
    not due yet in a steady stream) at each look: 10-40 ms where the seek takes 0.1 ms.
    PostgreSQL keeps the range (``:max_priority``): it bounds its index scan by it, where a
    list is only a filter."""
    if shape.on_sqlite:
        return JOBS.c.priority.in_(bindparam("priorities", expanding=True))
    return JOBS.c.priority <= bindparam("max_priority")


@functools.cache
def claimable(shape: ClaimShape) -> Prepared:
    """The due (``:now``), unleased queued jobs a claim may take, most urgent first, at most
    ``:limit``, locked as read (PostgreSQL skips the rows another claim holds)."""
    query = (select(*CLAIMED_COLUMNS)
             .where(JOBS.c.status == QUEUED, JOBS.c.due_at <= bindparam("now"), _free())
             .order_by(JOBS.c.priority, JOBS.c.due_at, JOBS.c.id)
             .limit(bindparam("limit", type_=Integer))
             .with_for_update(skip_locked=True))
    if shape.kinds:
        query = query.where(JOBS.c.kind.in_(bindparam("kinds", expanding=True)))
    if shape.besides:
        query = query.where(JOBS.c.kind.not_in(bindparam("besides", expanding=True)))
    if shape.max_priority is not None:
        query = query.where(_at_most(shape))
    if shape.running:
        query = query.where(_not_running(shape.on_sqlite))
    return Prepared(query)


@functools.cache
def next_due(shape: ClaimShape) -> Prepared:
    """``next_due_at``: the earliest due time of a claimable job and the earliest end of a
    held lease, among the queued jobs of ``shape``'s filters (``kinds`` unused), in one
    statement."""
    queued: ColumnElement[bool] = JOBS.c.status == QUEUED
    if shape.max_priority is not None:
        queued = and_(queued, _at_most(shape))
    if shape.running:
        queued = and_(queued, _not_running(shape.on_sqlite))
    if shape.besides:
        queued = and_(queued, JOBS.c.kind.not_in(bindparam("besides", expanding=True)))
    free: ColumnElement[Any] = select(func.min(JOBS.c.due_at)).where(
        queued, _free()).scalar_subquery()
    if shape.max_priority is not None and not shape.on_sqlite:
        # The earliest of each priority's earliest: each a seek of (status, priority,
        # due_at) in due order. As one min() PostgreSQL walked the status and due index
        # from the oldest due job: through every notice waiting behind a batch (30,000
        # in a steady stream of expiries, 15-30 ms a look).
        free = func.least(*(select(func.min(JOBS.c.due_at)).where(
            queued, JOBS.c.priority == priority, _free()).scalar_subquery()
            for priority in range(shape.max_priority + 1)))
    held = select(func.min(JOBS.c.lease_expires_at)).where(
        queued, JOBS.c.lease_expires_at > bindparam("now"))
    return Prepared(select(free, held.scalar_subquery()))
