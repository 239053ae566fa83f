"""What a statement costs, for tests that a lookup seeks its rows instead of walking a
table: on SQLite the virtual machine instructions it ran (its progress handler, which grow
with the rows it reads), on PostgreSQL the rows its plan read (``EXPLAIN ANALYZE``: rows
returned and removed by filters, per node), in a transaction rolled back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event

from pimbot.store.database import Database

STEP = 100  # the progress handler runs every STEP instructions


class Instructions:
    """What each SELECT or UPDATE of the engine cost, by its first words: SQLite's
    instructions while it ran, or the rows PostgreSQL's plan of it read."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine.sync_engine
        self.by_statement: list[tuple[str, int]] = []
        self._ran: list[tuple[str, Any]] = []
        self._count = 0

    def _progress(self) -> int:
        self._count += STEP
        return 0

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                *args: Any) -> None:
        if statement.split()[0] not in ("SELECT", "UPDATE"):
            return
        self._ran.append((statement, parameters))
        if self.db.is_sqlite:
            self._count = 0
            conn.connection.driver_connection._connection.set_progress_handler(
                self._progress, STEP)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.db.is_sqlite and statement.split()[0] in ("SELECT", "UPDATE"):
            conn.connection.driver_connection._connection.set_progress_handler(None, STEP)
            self.by_statement.append((_head(statement), self._count))

    async def of(self, look: Callable[[], Awaitable[Any]]) -> list[tuple[str, int]]:
        self.by_statement, self._ran = [], []
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        try:
            await look()
        finally:
            event.remove(self.engine, "before_cursor_execute", self._before)
            event.remove(self.engine, "after_cursor_execute", self._after)
        if not self.db.is_sqlite:
            for statement, parameters in self._ran:
                self.by_statement.append((_head(statement),
                                          await self._rows_read(statement, parameters)))
        return self.by_statement

    async def _rows_read(self, statement: str, parameters: Any) -> int:
        async with self.db.engine.connect() as conn:
            transaction = await conn.begin()
            try:
                result = await conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                plan = result.scalar_one()
            finally:
                await transaction.rollback()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return _read(plan[0]["Plan"])


def _head(statement: str) -> str:
    return " ".join(statement.split()[:4])


def _read(node: dict[str, Any]) -> int:
    """Rows a plan node and its children read (returned or removed by a filter)."""
    own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) \
        * node.get("Actual Loops", 1)
    return int(own) + sum(_read(child) for child in node.get("Plans", []))
