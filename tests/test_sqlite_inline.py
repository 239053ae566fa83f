"""SQLite statements run on the loop's thread; waiting for another writer must not block it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import PersonRow


async def test_a_write_waits_for_another_process_without_blocking_the_loop(
        sqlite_db: Database) -> None:
    path = sqlite_db.sqlite_path
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO people (email, display_name, created_at) "
                  "VALUES ('first@example.com', '', '2026-11-02 09:00:00.000000')")

    async def write() -> None:
        async with sqlite_db.transaction() as session:
            session.add(PersonRow(email="second@example.com", display_name="",
                                  created_at=datetime.now(UTC)))

    waiting = asyncio.create_task(write())
    for _ in range(20):  # the loop keeps running while pimbot's write waits for the lock
        await asyncio.sleep(0.005)
    assert not waiting.done()
    other.execute("COMMIT")  # only this coroutine can let the write through
    other.close()
    await asyncio.wait_for(waiting, timeout=30)
    async with sqlite_db.read() as session:
        emails = set((await session.execute(select(PersonRow.email))).scalars())
    assert emails == {"first@example.com", "second@example.com"}

