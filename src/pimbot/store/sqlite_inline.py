"""SQLite statements run on the event loop's own thread, without a thread hop per statement.

aiosqlite runs every call (``execute``, ``fetchall``, ``commit``…) on a worker thread and hands
the result back through ``call_soon_threadsafe``: about 120-250 µs a call on a busy 2-core
machine, while the call itself (an indexed lookup or a one-row insert in WAL mode with
``synchronous=NORMAL``) takes a few microseconds. A chat turn makes dozens of such calls, so
the hops, not SQLite, were most of a turn's cost (docs/PERFORMANCE.md, "Activations end to end").

``connect`` returns an ``aiosqlite.Connection`` whose calls run inline: its queue runs each
function as it is put and completes the future at once, so ``await`` returns without a trip
through the loop. The one thing that must not block the loop is waiting for another process's
write lock: inline connections set ``busy_timeout`` to 0 and a call that finds the database
locked is retried after an ``asyncio.sleep`` (backing off to 50 ms, giving up after
``BUSY_GIVE_UP_S``, as the 30 s busy timeout did before). SQLite answers "locked" before it
changes anything, so retrying the statement is what its own busy handler would have done.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Generator
from functools import partial
from typing import Any

import aiosqlite
from aiosqlite.core import set_exception, set_result
from sqlalchemy.engine import URL

BUSY_GIVE_UP_S = 30.0
# Prepared statements sqlite3 keeps per connection (its default, 128, is fewer than the
# distinct SQL texts pimbot runs: each expanding IN list length is one more, and a statement
# pushed out is parsed and planned again at its next use).
STATEMENT_CACHE = 1024
_FIRST_WAIT_S = 0.001
_MAX_WAIT_S = 0.05


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its worker thread: runs each item as it is put."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the awaiting caller, as the thread does
            if future is not None:
                set_exception(future, error)
        else:
            if future is not None:
                set_result(future, result)


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and (
        "database is locked" in str(error) or "database is busy" in str(error))


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        function = partial(fn, *args, **kwargs)
        wait, deadline = _FIRST_WAIT_S, time.monotonic() + BUSY_GIVE_UP_S
        while True:
            try:
                return function()
            except sqlite3.OperationalError as error:
                if not _locked(error) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(wait)  # another process writes: let the loop run meanwhile
            wait = min(wait * 2, _MAX_WAIT_S)


def inline_creator(url: URL) -> Callable[[], Awaitable[InlineConnection]]:
    """The engine's ``async_creator`` for an SQLite URL: the arguments SQLAlchemy's own
    dialect would pass to ``sqlite3.connect`` (so ``?uri=true`` and the like still work)."""
    args, params = url.get_dialect()().create_connect_args(url)

    async def create() -> InlineConnection:
        connection = connect(*args, **params)
        await connection._connect()
        return connection

    return create


def connect(database: str, **kwargs: Any) -> InlineConnection:
    """What ``aiosqlite.connect`` is to a threaded connection (the engine's ``async_creator``
    awaits it). ``check_same_thread`` is off because the pool may close a connection from
    the garbage collector's thread; pimbot uses each connection from the loop only."""
    kwargs = {**kwargs, "check_same_thread": False}
    kwargs.setdefault("isolation_level", None)
    kwargs.setdefault("cached_statements", STATEMENT_CACHE)

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        connection.execute("PRAGMA busy_timeout=0")  # waits happen in _execute, off the loop
        return connection

    return InlineConnection(connector)
