"""Hot statements compiled once per dialect and run at the driver, in the session's transaction.

``AsyncSession.execute`` of a prebuilt Core statement costs ~200 µs of CPU on SQLite (~360
on PostgreSQL); the driver call under it ~10 µs (~100): the rest is SQLAlchemy's execution
context, result machinery, events and greenlet hops (docs/PERFORMANCE.md, "The floor").
A ``Prepared`` statement keeps what SQLAlchemy computes for it once per dialect — the SQL text
in the driver's positional paramstyle, each position's bind processor, the result columns'
processors — and ``run`` / ``run_many`` hand the values straight to the session's own driver
connection. The rules that make that the same as ``session.execute``:

- pending ORM changes are flushed first (the session's autoflush), so a caller that added
  rows and then runs a statement keeps its order;
- the statement runs on ``await session.connection()``, so inside the session's transaction
  (on SQLite the ``BEGIN`` pimbot's engine issues; on PostgreSQL SQLAlchemy's asyncpg adapter
  begins lazily at its first statement, so the runner begins it first when it has not: a
  statement sent before that would run in autocommit, outside the transaction);
- values go through the bind processors SQLAlchemy would apply (aware datetimes as SQLite's
  strings, JSON, booleans) and rows come back through its result processors, so they equal
  what ``session.execute`` returns; expanding ``IN`` parameters get one form per number of
  values (cached);
- a driver error is raised as SQLAlchemy's exception (``IntegrityError`` …) with the driver's
  as ``orig``, and leaves the transaction to the caller's rollback, as before;
- only Core statements (or ORM column selects) are accepted: they never touched the ORM's
  identity map through ``session.execute`` either, so the session's objects see what they
  saw before;
- the engine's ``before_cursor_execute`` / ``after_cursor_execute`` listeners (statement
  counters of the benchmarks and tests) still see each statement; without listeners the check
  costs one attribute.

An ``executemany`` with ``RETURNING`` runs the one-row statement once per row (SQLite: in one
call, in process; PostgreSQL: asyncpg's pipelined ``fetchmany``, one round trip).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.session import SessionTransactionState
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from pimbot.store.sqlite_writer import JOINS_INLINE

_Processor = Callable[[Any], Any]
# One positional value: (parameter, index in an expanding list or -1, bind processor or None).
_Slot = tuple[str, int, _Processor | None]
_STATUS = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+|MERGE) (\d+)")
_ACTIVE = SessionTransactionState.ACTIVE
_FORMS_PER_STATEMENT = 64  # expanded forms kept per dialect (one per set of list lengths)


@dataclass(frozen=True)
class Ran:
    """What a statement returned: its rows (processed) and the rows it changed (-1 when the
    driver does not say, as a DBAPI cursor's ``rowcount``)."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True)
class _Form:
    """A statement's SQL and slots for one dialect and one set of expanding lengths."""

    sql: str
    slots: tuple[_Slot, ...]
    results: tuple[_Processor | None, ...] | None  # None: returns no rows
    fixed: Mapping[str, Any]  # values the statement holds itself (and column defaults)
    # Worked out once from the above (a statement runs thousands of times): the parameter of
    # each position, the positions whose values are processed, the columns whose results are.
    _names: tuple[str, ...] = field(init=False)
    _bound: tuple[tuple[int, _Processor], ...] = field(init=False)
    _expanded: bool = field(init=False)
    _read: tuple[tuple[int, _Processor], ...] = field(init=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "_names", tuple(name for name, _, _ in self.slots))
        setattr_(self, "_bound", tuple((i, process) for i, (_, _, process)
                                       in enumerate(self.slots) if process is not None))
        setattr_(self, "_expanded", any(index >= 0 for _, index, _ in self.slots))
        setattr_(self, "_read", tuple((i, process) for i, process
                                      in enumerate(self.results or ()) if process is not None))

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = {**self.fixed, **params} if self.fixed else params
        out = [values[name] for name in self._names]
        if self._expanded:
            for i, (_, index, _) in enumerate(self.slots):
                if index >= 0:
                    out[i] = out[i][index]
        for i, process in self._bound:
            out[i] = process(out[i])
        return tuple(out)

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        read = self._read
        if not read:
            return [tuple(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for i, process in read:
                values[i] = process(values[i])
            out.append(tuple(values))
        return out


class _Compiled:
    """One dialect's compilation of a ``Prepared`` statement, and its expanded forms."""

    def __init__(self, statement: ClauseElement, dialect: Dialect,
                 keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        assert isinstance(compiled, SQLCompiler)
        if compiled.escaped_bind_names or compiled.literal_execute_params:
            raise TypeError("prepared statements take plain bound parameters only")
        if not compiled.positional:
            raise TypeError(f"{dialect.name}: a positional paramstyle is expected")
        self.compiled = compiled
        self.expanding = tuple(sorted(
            compiled.bind_names[bind] for bind in compiled.post_compile_params))
        fixed: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            if not bind.required:
                fixed[name] = bind.effective_value
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if default is not None and not getattr(default, "is_scalar", False):
                raise TypeError(f"{column}: only scalar column defaults are prepared")
            fixed[column.key] = getattr(default, "arg", None)
        self.fixed = fixed
        returns = compiled.returning or isinstance(statement, Select)
        self.results: tuple[_Processor | None, ...] | None = tuple(
            column.type._cached_result_processor(dialect, None)
            for column in compiled._result_columns) if returns else None
        self.forms: dict[tuple[int, ...], _Form] = {}
        if not self.expanding:
            processors = compiled._bind_processors
            positions = compiled.positiontup or []
            self.forms[()] = _Form(compiled.string, tuple(
                (name, -1, _single(processors.get(name))) for name in positions),
                self.results, fixed)

    def form(self, params: Mapping[str, Any]) -> _Form:
        if not self.expanding:
            return self.forms[()]
        lengths = tuple(len(params[name]) for name in self.expanding)
        form = self.forms.get(lengths)
        if form is None:
            if len(self.forms) >= _FORMS_PER_STATEMENT:
                self.forms.clear()
            form = self.forms[lengths] = self._expand(lengths)
        return form

    def _expand(self, lengths: tuple[int, ...]) -> _Form:
        compiled = self.compiled
        dummy: dict[str, Any] = {name: None for name in compiled.bind_names.values()}
        dummy.update({name: [None] * n for name, n in zip(self.expanding, lengths, strict=True)})
        state = compiled.construct_expanded_state(dummy)
        origin = {expanded: (name, index) for name, names in state.parameter_expansion.items()
                  for index, expanded in enumerate(names)}
        single = compiled._bind_processors  # the expanded state has the expanded ones only
        slots = []
        for name in state.positiontup or ():
            source, index = origin.get(name, (name, -1))
            process = state.processors.get(name) if index >= 0 else single.get(name)
            slots.append((source, index, _single(process)))
        return _Form(state.statement, tuple(slots), self.results, self.fixed)


def _single(processor: Any) -> _Processor | None:
    if processor is not None and not callable(processor):
        raise TypeError("tuple-typed parameters are not prepared")
    return processor  # type: ignore[no-any-return]


class Prepared:
    """A Core statement (``INSERT`` / ``UPDATE`` / ``DELETE`` / ``SELECT`` of columns) to run
    through ``run`` / ``run_many``; build it once, at import. ``keys``: for an ``INSERT``
    or ``UPDATE`` without its own values, the columns each run gives (others take their
    scalar defaults), as ``session.execute`` infers them from the first parameter set."""

    __slots__ = ("_by_dialect", "_keys", "statement")

    def __init__(self, statement: ClauseElement, *, keys: Sequence[str] | None = None) -> None:
        if isinstance(statement, (Insert, Update, Delete)) and \
                statement._propagate_attrs.get("compile_state_plugin") == "orm":
            raise TypeError("ORM-enabled DML keeps the identity map in step: use "
                            "session.execute for it, or a Core statement on the table")
        if isinstance(statement, Select) and any(
                description.get("entity") is not None
                and description.get("expr") is description.get("entity")
                for description in statement.column_descriptions):
            raise TypeError("a select of ORM entities loads objects: use session.execute")
        self.statement = statement
        self._keys = tuple(keys) if keys else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled(
                self.statement, dialect, self._keys)
        return compiled


async def run(session: AsyncSession, statement: Prepared,
              params: Mapping[str, Any] | None = None, *, autoflush: bool = True) -> Ran:
    """Run ``statement`` once with ``params`` in ``session``'s transaction (see the module
    docstring for what makes it the same as ``session.execute``). ``autoflush=False``: as
    ``session.connection().execute``, pending ORM changes stay pending (a caller writing
    one of them itself, ``versioned.write_row``)."""
    sync = await _connection(session, autoflush)
    form = statement._compiled(sync.dialect).form(params or {})
    args = form.args(params or {})
    return await _driver(sync).one(sync, form, args)


async def run_many(session: AsyncSession, statement: Prepared,
                   params: Sequence[Mapping[str, Any]], *, autoflush: bool = True) -> Ran:
    """Run ``statement`` once per parameter set (an executemany); rows of a ``RETURNING``
    statement come back in the order of ``params``; ``rowcount`` is the total where the
    driver reports it (SQLite), else -1. Expanding parameters must have one length."""
    if not params:
        return Ran([], 0)
    sync = await _connection(session, autoflush)
    form = statement._compiled(sync.dialect).form(params[0])
    rows = [form.args(one) for one in params]
    return await _driver(sync).many(sync, form, rows)


async def _connection(session: AsyncSession, autoflush: bool) -> Connection:
    """The session's connection, its pending ORM changes flushed first (as autoflush): the
    one its transaction holds for its bind when it holds one (what ``session.connection()``
    returns then, without its trip through a greenlet: ~13 µs, half a statement's cost
    here), else ``session.connection()``'s, which begins the transaction."""
    sync = session.sync_session
    if autoflush and sync.autoflush and not sync._flushing and not sync._is_clean():
        await session.flush()
    transaction = sync._transaction
    if transaction is not None and transaction._state is _ACTIVE and sync.bind is not None:
        held = transaction._connections.get(sync.bind)
        if held is not None:
            return held[0]
    if sync.info.get(JOINS_INLINE):  # SQLite's held connection: joined without a driver call
        return sync.connection()
    conn = (await session.connection()).sync_connection
    assert conn is not None
    return conn


class _Driver(ABC):
    """How one driver runs a form once (``one``) or once per row (``many``)."""

    @abstractmethod
    async def one(self, conn: Connection, form: _Form, args: tuple[Any, ...]) -> Ran: ...

    @abstractmethod
    async def many(self, conn: Connection, form: _Form, rows: list[tuple[Any, ...]]) -> Ran: ...


def _before(conn: Connection, sql: str, args: Any, many: bool) -> bool:
    """Tell the engine's cursor listeners (benchmarks' and tests' counters); whether any."""
    dispatch = conn.dispatch
    if not (dispatch.before_cursor_execute or dispatch.after_cursor_execute):
        return False
    for listener in dispatch.before_cursor_execute:
        listener(conn, None, sql, args, None, many)
    return True


def _after(conn: Connection, sql: str, args: Any, many: bool) -> None:
    for listener in conn.dispatch.after_cursor_execute:
        listener(conn, None, sql, args, None, many)


def _wrapped(conn: Connection, sql: str, args: Any, error: Exception,
             many: bool) -> exc.StatementError:
    dialect = conn.dialect
    return exc.DBAPIError.instance(sql, args, error, dialect.loaded_dbapi.Error,
                                   hide_parameters=conn.engine.hide_parameters,
                                   dialect=dialect, ismulti=many)


def _sqlite_one(db: Any, sql: str, args: tuple[Any, ...], fetch: bool
                ) -> tuple[list[Any], int]:
    cursor = db.execute(sql, args)
    try:
        rows = cursor.fetchall() if fetch else []
        return rows, cursor.rowcount
    finally:
        cursor.close()


def _sqlite_many(db: Any, sql: str, rows: list[tuple[Any, ...]], fetch: bool
                 ) -> tuple[list[Any], int]:
    if not fetch:
        cursor = db.executemany(sql, rows)
        try:
            return [], cursor.rowcount
        finally:
            cursor.close()
    out: list[Any] = []
    count = 0
    for args in rows:
        fetched, changed = _sqlite_one(db, sql, args, True)
        out.extend(fetched)
        count += max(changed, 0)
    return out, count


class _Sqlite(_Driver):
    """aiosqlite (pimbot's inline connection or the threaded one): the whole statement, its
    fetch included, in one of the connection's calls (inline: on this thread, retried while
    another process holds the write lock)."""

    async def one(self, conn: Connection, form: _Form, args: tuple[Any, ...]) -> Ran:
        return await self._call(conn, form, _sqlite_one, args, False)

    async def many(self, conn: Connection, form: _Form, rows: list[tuple[Any, ...]]) -> Ran:
        return await self._call(conn, form, _sqlite_many, rows, True)

    @staticmethod
    async def _call(conn: Connection, form: _Form, function: Any, args: Any,
                    many: bool) -> Ran:
        aio: Any = conn.connection.driver_connection
        told = _before(conn, form.sql, args, many)
        try:
            raw, count = await aio._execute(function, aio._conn, form.sql, args,
                                            form.results is not None)
        except Exception as error:
            raise _wrapped(conn, form.sql, args, error, many) from error
        if told:
            _after(conn, form.sql, args, many)
        return Ran(form.rows(raw) if raw else [], count)


class _Asyncpg(_Driver):
    """asyncpg under SQLAlchemy's adapter: its prepared-statement cache, its lock, and its
    transaction (begun here when SQLAlchemy has not sent its first statement yet)."""

    async def one(self, conn: Connection, form: _Form, args: tuple[Any, ...]) -> Ran:
        return await self._call(conn, form, args, False)

    async def many(self, conn: Connection, form: _Form, rows: list[tuple[Any, ...]]) -> Ran:
        return await self._call(conn, form, rows, True)

    @staticmethod
    async def _call(conn: Connection, form: _Form, args: Any, many: bool) -> Ran:
        adapted: Any = conn.connection.dbapi_connection
        told = _before(conn, form.sql, args, many)
        try:
            async with adapted._execute_mutex:
                if adapted._transaction is None:
                    await adapted._start_transaction()  # SQLAlchemy's lazy BEGIN, now
                try:
                    prepared, _ = await adapted._prepare(form.sql, 0)
                    if many and form.results is not None:
                        raw, count = await prepared.fetchmany(args), -1
                    elif many:
                        raw, count = await prepared.executemany(args), -1
                    else:
                        raw = await prepared.fetch(*args)
                        found = _STATUS.match(prepared.get_statusmsg() or "")
                        count = int(found.group(1)) if found else -1
                except Exception as error:
                    adapted._handle_exception(error)  # raises the adapter's DBAPI error
        except exc.DBAPIError:
            raise
        except Exception as error:
            raise _wrapped(conn, form.sql, args, error, many) from error
        if told:
            _after(conn, form.sql, args, many)
        return Ran(form.rows(raw) if raw and form.results is not None else [], count)


_DRIVERS: dict[str, _Driver] = {"sqlite": _Sqlite(), "postgresql": _Asyncpg()}


def _driver(conn: Connection) -> _Driver:
    driver = _DRIVERS.get(conn.dialect.name)
    if driver is None:
        raise TypeError(f"no prepared-statement driver for {conn.dialect.name}")
    return driver
