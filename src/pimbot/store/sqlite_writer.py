"""SQLite's write transactions: one held connection, and group commit.

SQLite has one writer at a time (``BEGIN IMMEDIATE``), and a process's writers wait for it in
memory anyway. A session and a pooled connection per transaction cost ~0.2 ms of CPU on top of
the two statements SQLite needs (docs/PERFORMANCE.md, "The floor"), so this process writes
through one connection it keeps, and (with ``GROUP_MOST`` > 1; off by default, see there)
the writers waiting for it share a transaction:

- Writers take **turns**, first come first served (``_Turns``: the turn is handed to the
  longest-waiting task, never taken by a newcomer).
- The first turn of a **group** sends ``BEGIN IMMEDIATE`` on the held connection (waiting,
  off the loop, while another process writes). Each writer's session is joined to it as a
  ``SAVEPOINT`` (``join_transaction_mode="create_savepoint"``; the savepoints are sent to
  ``sqlite3`` directly, not compiled each time): a writer that fails rolls back its own
  savepoint only, and the next writer sees exactly what the ones before it left.
- A writer that ends while others wait hands its turn on and waits; the writer that ends with
  nobody waiting, or once the group holds ``GROUP_MOST`` writers (1 by default: each writer
  commits its own, see the constant) or has been open for ``GROUP_SPAN_S``, sends
  ``COMMIT`` for all of them. Each ``async with`` exits only after
  that ``COMMIT`` (so nothing is answered that did not commit), and a failed ``COMMIT`` fails
  every writer of the group. ``Database.on_commit`` callbacks run in each writer's own task,
  after the commit, with its own session (``session.info`` is per writer).
- A writer cancelled while it waits for its turn leaves the queue; cancelled in its body, it
  rolls its savepoint back like any failure; cancelled while it waits for the commit, it
  still waits (its writes are in the group), then raises ``CancelledError``.
- ``Database.read()`` inside a writer's turn (same task) reads through the held connection,
  so it sees the writers before it in the group, as it would have seen them committed.

A process killed in the middle of a group leaves the whole group uncommitted (SQLite's
journal): no writer of it was answered. The ``begin`` and ``commit`` events of the engine
still fire once per ``BEGIN IMMEDIATE`` and ``COMMIT`` sent, so listeners count real
transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, AsyncTransaction
from sqlalchemy.orm import Session

# Writers in one COMMIT at most. 1: none shared. Measured (docs/PERFORMANCE.md, branch
# `group`): in WAL with synchronous=NORMAL a COMMIT costs ~15 µs and no fsync, and writers
# held back for a shared one cost more CPU and throughput than that saves. Raise it where a
# COMMIT is dear (synchronous=FULL, slow disks); the tests run with it raised.
GROUP_MOST = 1
GROUP_SPAN_S = 0.001  # a group commits at the first turn's end after it has been open this long
WRITER_OPTION = "pimbot_writer"  # execution option of the held connection (no BEGIN of its own)
# ``session.info`` key of the sessions on the held connection: joining its transaction sends
# nothing through the driver (a savepoint goes straight to sqlite3, a writer alone joins as
# is), so ``prepared`` may join it without the greenlet a driver call needs.
JOINS_INLINE = "pimbot_joins_inline"


class GroupCommitError(Exception):
    """The group's ``COMMIT`` failed (or its transaction was lost): this writer's changes were
    not committed. The first cause is ``__cause__``."""


@dataclass(eq=False)
class _Group:
    opened: float
    alone: bool  # one writer only (``GROUP_MOST`` 1): it joins without a savepoint of its own
    members: int = 0
    waiting: list[asyncio.Future[None]] = field(default_factory=list)
    lost: BaseException | None = None  # the transaction is gone: nothing more may join


@dataclass(eq=False)
class _Turn:
    """The writer whose turn it is (for ``read`` inside it)."""

    task: asyncio.Task[Any] | None
    session: AsyncSession | None = None


_current: ContextVar[_Turn | None] = ContextVar("pimbot_sqlite_turn", default=None)


class _Turns:
    """A first-come-first-served lock whose release hands it to the longest waiter."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def take(self, handed_back: Callable[[], None]) -> None:
        """Wait for the turn. ``handed_back`` is called when this task is cancelled after the
        turn was already handed to it (it must be passed on)."""
        if not self._held and not self._waiters:
            self._held = True
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                handed_back()
            else:
                self._waiters.remove(waiter)
            raise

    def someone_waits(self) -> bool:
        return any(not waiter.done() for waiter in self._waiters)

    def pass_on(self) -> None:
        """Hand the turn to the longest waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._held = False


class SqliteWriter:
    """The write side of an inline SQLite ``Database`` (see the module docstring)."""

    def __init__(self, engine: AsyncEngine,
                 committed: Callable[[AsyncSession], None]) -> None:
        self._engine = engine
        self._committed = committed
        self._turns = _Turns()
        self._conn: AsyncConnection | None = None
        self._umbrella: AsyncTransaction | None = None
        self._group: _Group | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self.group_most = GROUP_MOST
        self.group_span_s = GROUP_SPAN_S
        _cheap_savepoints(engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        await self._turns.take(self._handed_back)
        try:
            group = self._group or await self._begin()
            group.members += 1
            session = AsyncSession(
                bind=self._conn, expire_on_commit=False, info={JOINS_INLINE: True},
                join_transaction_mode="rollback_only" if group.alone else "create_savepoint")
        except BaseException:
            self._turns.pass_on()  # no group was opened, or it stays open for the next
            raise
        turn = _Turn(asyncio.current_task(), session)
        token = _current.set(turn)
        try:
            yield session
            touched = await _released(session)
        except BaseException as error:
            _current.reset(token)
            turn.task = None
            await self._undo(session, group, error)
            raise
        _current.reset(token)
        turn.task = None
        if not touched:  # it never reached the database: nothing of it waits for COMMIT
            self._end_turn(group, None)
            self._committed(session)
            return
        outcome = asyncio.get_running_loop().create_future()
        self._end_turn(group, outcome)
        cancelled = await _committed_despite_cancel(outcome)
        self._committed(session)
        if cancelled:
            raise asyncio.CancelledError

    @asynccontextmanager
    async def read_in_turn(self) -> AsyncIterator[AsyncSession | None]:
        """Inside this task's write turn: a session on the held connection (it sees the group
        so far, and this writer's own changes); else None (read on a pooled connection)."""
        turn = _current.get()
        if turn is None or turn.task is not asyncio.current_task():
            yield None
            return
        session = AsyncSession(bind=self._conn, join_transaction_mode="create_savepoint",
                               expire_on_commit=False, info={JOINS_INLINE: True})
        try:
            yield session
        finally:
            await _released(session)  # a read changes nothing: release, never undo

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn, self._umbrella, self._group = self._conn, None, None, None
            await conn.close()

    # -- the group ---------------------------------------------------------------------------

    async def _begin(self) -> _Group:
        if self._conn is None:
            conn = await self._engine.connect()
            await conn.execution_options(**{WRITER_OPTION: True})
            self._conn = conn
        if self._umbrella is None or not self._umbrella.is_active:
            # SQLAlchemy's view: one transaction, always (begun again after a writer alone
            # rolled it back)
            self._umbrella = await self._conn.begin()
        sync = self._sync()
        driver: Any = sync.connection.driver_connection
        await driver._execute(driver._conn.execute, "BEGIN IMMEDIATE")  # waits off the loop
        if sync.dispatch.begin:
            sync.dispatch.begin(sync)
        self._group = _Group(opened=time.monotonic(), alone=self.group_most <= 1)
        return self._group

    def _end_turn(self, group: _Group, outcome: asyncio.Future[None] | None) -> None:
        """This writer's turn is over: hand it on within the group, or commit the group."""
        if outcome is not None:
            group.waiting.append(outcome)
        if (group.lost is None and group.members < self.group_most
                and time.monotonic() - group.opened < self.group_span_s
                and self._turns.someone_waits()):
            self._turns.pass_on()
            return
        self._finish(group)
        self._turns.pass_on()

    def _finish(self, group: _Group) -> None:
        """COMMIT the group (ROLLBACK if nobody in it kept anything) and tell its writers."""
        self._group = None
        raw = self._raw()
        error = group.lost
        if error is None:
            try:
                raw.execute("COMMIT" if group.waiting else "ROLLBACK")
            except BaseException as failed:
                error = failed
                self._abandon(raw)
            else:
                sync = self._sync()
                if group.waiting and sync.dispatch.commit:
                    sync.dispatch.commit(sync)
        else:
            self._abandon(raw)
        for waiter in group.waiting:
            if error is None:
                waiter.set_result(None)
            else:
                lost = GroupCommitError(f"the write transaction was not committed: {error!r}")
                lost.__cause__ = error
                waiter.set_exception(lost)
                waiter.exception()  # retrieved: a writer cancelled meanwhile still sees it

    async def _undo(self, session: AsyncSession, group: _Group, error: BaseException) -> None:
        """A writer failed: roll its savepoint back, then end its turn as any other. A writer
        alone rolls the whole transaction back (nobody else's work is in it): the group is
        over, as when SQLite itself ended it."""
        try:
            await session.run_sync(_roll_back)
            if not self._raw().in_transaction:  # the whole group was rolled back
                raise RuntimeError("SQLite ended the transaction") from error
        except BaseException as lost:
            group.lost = group.lost or lost
        self._end_turn(group, None)

    def _abandon(self, raw: sqlite3.Connection) -> None:
        if raw.in_transaction:
            with suppress(sqlite3.Error):
                raw.execute("ROLLBACK")

    def _handed_back(self) -> None:
        """A task was handed the turn and cancelled before it ran: pass it on, or, when the
        group it would have joined has writers waiting and nobody else is queued, commit
        the group (in a task of its own: this one is being cancelled)."""
        group = self._group
        if group is None or self._turns.someone_waits():
            self._turns.pass_on()
            return
        closer = asyncio.get_running_loop().create_task(self._close_group(group))
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    async def _close_group(self, group: _Group) -> None:
        self._finish(group)
        self._turns.pass_on()

    def _sync(self) -> Connection:
        assert self._conn is not None
        sync = self._conn.sync_connection
        assert sync is not None
        return sync

    def _raw(self) -> sqlite3.Connection:
        driver: Any = self._sync().connection.driver_connection
        raw: sqlite3.Connection = driver._conn
        return raw


async def _released(session: AsyncSession) -> bool:
    """``_release`` the session: at once when it has nothing to flush (its commit sends
    nothing through the driver then, only a RELEASE straight to sqlite3, or nothing at all
    for a writer alone), else in the greenlet its flush needs."""
    sync = session.sync_session
    if sync._is_clean():
        return _release(sync)
    touched: bool = await session.run_sync(_release)
    return touched


def _release(sync: Session) -> bool:
    """Commit the session (flush and RELEASE its savepoint); whether it reached the database."""
    transaction = sync.get_transaction()
    touched = transaction is not None and (bool(transaction._connections)
                                           or not sync._is_clean())
    sync.commit()
    sync.close()
    return touched


def _roll_back(sync: Session) -> None:
    sync.rollback()
    sync.close()


async def _committed_despite_cancel(outcome: asyncio.Future[None]) -> bool:
    """Wait for the group's outcome even if this task is cancelled meanwhile (its changes are
    in the group either way). Raises the group's error; else whether it was cancelled."""
    cancelled = False
    while not outcome.done():
        try:
            await asyncio.shield(outcome)
        except asyncio.CancelledError:
            cancelled = True
        except GroupCommitError:
            break
    outcome.result()
    return cancelled


def _cheap_savepoints(engine: AsyncEngine) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO straight to ``sqlite3`` (inline connections only):
    SQLAlchemy compiles and executes each as a statement, ~60 µs instead of ~3."""
    dialect: Any = engine.sync_engine.dialect

    def raw(connection: Connection) -> sqlite3.Connection:
        driver: Any = connection.connection.driver_connection
        conn: sqlite3.Connection = driver._conn
        return conn

    dialect.do_savepoint = lambda connection, name: raw(connection).execute(
        f'SAVEPOINT "{name}"')
    dialect.do_release_savepoint = lambda connection, name: raw(connection).execute(
        f'RELEASE SAVEPOINT "{name}"')
    dialect.do_rollback_to_savepoint = lambda connection, name: raw(connection).execute(
        f'ROLLBACK TO SAVEPOINT "{name}"')
