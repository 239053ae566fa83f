"""The database handle: engine, write transactions, migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction begins IMMEDIATE
(one writer at a time, so compare-and-set and the audit chain are serial); with the inline
driver the writes go through one held connection (``sqlite_writer``). PostgreSQL runs
through asyncpg; writers that extend the audit chain take a transaction-level advisory lock.
The handle also carries the audit chain's keys (never stored in the database itself).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pimbot.store.audit_crypto import AuditKeyring
from pimbot.store.sqlite_checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from pimbot.store.sqlite_inline import inline_creator
from pimbot.store.sqlite_writer import WRITER_OPTION, SqliteWriter

AUDIT_LOCK_KEY = 0x70696D626F74  # "pimbot"
STARTUP_LOCK_KEY = 0x70696D7374  # "pimst": migrations and the policy apply, one process at a time
STARTUP_LOCK_SUFFIX = ".startup.lock"
PING_SECONDS = 3.0  # a readiness probe answers within this, database or not
POOL_SIZE = 10  # PostgreSQL connections kept open; sessions beyond it wait in _admitted
POOL_OVERFLOW = 20  # for what opens connections itself (the start-up lock, readiness pings)
_holding_place: ContextVar[bool] = ContextVar("pimbot_db_place", default=False)
# Built once (a turn takes two of these locks on PostgreSQL): their compiled forms are cached.
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LOCK_TEXT = text("SELECT pg_advisory_xact_lock(hashtext(:k))")


class Database:
    """``audit_keyring`` MACs the audit events this handle appends and checks them on verify.
    The composition root passes the configured one; without it a random key is used, which
    suits tests and benchmarks (they verify in-process) and fails ``pimbot audit verify``."""

    def __init__(
        self, url: str, *, echo: bool = False, audit_keyring: AuditKeyring | None = None,
        sqlite_inline: bool = True,
    ) -> None:
        self.url = url
        self.audit_keyring = audit_keyring or AuditKeyring.ephemeral()
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        self.sqlite_inline = self.is_sqlite and sqlite_inline
        if self.sqlite_inline:
            kwargs["async_creator"] = inline_creator(parsed)
        elif self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = POOL_SIZE
            kwargs["max_overflow"] = POOL_OVERFLOW
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, busy_timeout_ms=0 if self.sqlite_inline else 30000)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._threaded_writers = asyncio.Lock()
        # PostgreSQL: at most POOL_SIZE sessions at once; the rest wait here, in memory and
        # without a timeout, rather than on the pool (whose 30 s checkout timeout failed
        # turns of a burst of 1,000, and whose overflow connections are opened and closed
        # again under such a burst). SQLite writers are serial already.
        self._sessions_at_once = None if self.is_sqlite else asyncio.Semaphore(POOL_SIZE)
        self._after_commit: list[Callable[[AsyncSession], None]] = []
        # Inline SQLite: one held connection and group commit (``sqlite_writer``).
        self.sqlite_writer = (SqliteWriter(self.engine, self._committed) if self.sqlite_inline
                              else None)
        # An SQLite file's WAL is checkpointed on a thread, not by the committing connection
        # on the loop (``sqlite_checkpoint``).
        path = self.sqlite_path
        self.wal_checkpointer = WalCheckpointer(path) if path is not None else None

    def on_commit(self, callback: Callable[[AsyncSession], None]) -> None:
        """Call ``callback(session)`` after every committed write transaction.

        The scheduler uses it to wake its loop when a transaction enqueued a job
        (``session.info["pimbot_jobs_enqueued"]``).
        """
        self._after_commit.append(callback)

    def _committed(self, session: AsyncSession) -> None:
        if self.wal_checkpointer is not None:
            self.wal_checkpointer.committed()
        for callback in self._after_commit:
            callback(session)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        database = make_url(self.url).database
        if not database or database == ":memory:":
            return None
        return Path(database)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: commits on success, rolls back on error.

        On SQLite writers are serial: inline, they take turns on one held connection and
        those queued together share one COMMIT, each exiting after it (``sqlite_writer``);
        threaded, an in-process lock plus BEGIN IMMEDIATE. On PostgreSQL the audit chain
        takes its own advisory lock (see ``lock_audit_chain``).
        """
        if self.sqlite_writer is not None:
            async with self.sqlite_writer.transaction() as session:
                yield session
        elif self.is_sqlite:
            async with self._threaded_writers, self.sessions() as session:
                await session.connection(execution_options={"pimbot_write": True})
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
            self._committed(session)
        else:
            async with self._admitted(), self.sessions() as session:
                async with session.begin():
                    yield session
                self._committed(session)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session. Inside a write transaction's own task on SQLite it reads
        through the writer's connection (it sees the transactions committing with this one,
        see ``sqlite_writer``); elsewhere a pooled connection's snapshot of what committed."""
        if self.sqlite_writer is not None:
            async with self.sqlite_writer.read_in_turn() as session:
                if session is not None:
                    yield session
                    return
        async with self._admitted(), self.sessions() as session:
            yield session

    @asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        """One of the ``POOL_SIZE`` places (PostgreSQL). A session opened while this task
        already holds one (a read inside a transaction) takes no second place, so nesting
        cannot wait on itself."""
        if self._sessions_at_once is None or _holding_place.get():
            yield
            return
        async with self._sessions_at_once:
            token = _holding_place.set(True)
            try:
                yield
            finally:
                _holding_place.reset(token)

    async def lock_audit_chain(self, session: AsyncSession) -> None:
        if not self.is_sqlite:
            await (await session.connection()).execute(_LOCK, {"k": AUDIT_LOCK_KEY})

    async def lock_key(self, session: AsyncSession, key: str) -> None:
        """Serialise transactions about one thing (e.g. a person's slot for a role) until
        commit: a PostgreSQL advisory lock; SQLite writers are serial already."""
        if not self.is_sqlite:
            await (await session.connection()).execute(_LOCK_TEXT, {"k": key})

    @asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        """Held while a process migrates the schema and applies the policy, so replicas that
        start together do it one after the other (the later ones find nothing left to do).

        PostgreSQL: a session-level advisory lock on a connection of its own (released when
        the block ends, or by the server if the process dies); an SQLite file: an exclusive
        ``flock`` on a file beside it; in-memory SQLite: nothing (one process by nature).
        """
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": STARTUP_LOCK_KEY})
                await conn.commit()
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": STARTUP_LOCK_KEY})
                    await conn.commit()
            return
        path = self.sqlite_path
        if path is None:
            yield
            return
        lock_path = path.with_name(path.name + STARTUP_LOCK_SUFFIX)
        fd = await _flock(lock_path)
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    async def ping(self) -> bool:
        """Whether the database answers ``SELECT 1`` within ``PING_SECONDS`` (on a new or
        pooled connection: a dead pooled one is replaced, see ``pool_pre_ping``)."""
        try:
            async with asyncio.timeout(PING_SECONDS), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def upgrade(self) -> None:
        """Run Alembic migrations up to head."""
        from pimbot.store.migrate import upgrade

        await upgrade(self.engine)

    async def dispose(self) -> None:
        if self.sqlite_writer is not None:
            await self.sqlite_writer.close()
        await self.engine.dispose()
        if self.wal_checkpointer is not None:
            await self.wal_checkpointer.close()


async def _flock(path: Path, poll: float = 0.05) -> int:
    """Open ``path`` and wait for an exclusive lock on it; returns the descriptor. Polls
    without blocking, so a start waiting for it can be cancelled (SIGTERM) at any moment."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                await asyncio.sleep(poll)
    except BaseException:
        os.close(fd)
        raise


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (so BEGIN IMMEDIATE works).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")  # sqlite_checkpoint
        # A write transaction's savepoint journal (``sqlite_writer``) stays in memory, not in
        # a temporary file once it outgrows 64 KiB (a batch of 1,000 revokes did).
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN; reads get a deferred BEGIN (WAL snapshot);
        # the inline writer's held connection sends its own (``sqlite_writer``).
        options = conn.get_execution_options()
        if options.get(WRITER_OPTION):
            return
        if options.get("pimbot_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
