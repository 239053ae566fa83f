"""The SQLite WAL is copied back into the database file on a thread, never by a commit on the
event loop (``store/sqlite_checkpoint``): a checkpoint there stalled every chat turn and timer
for 5-12 ms each ~60 commits."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text

from pimbot.store.database import Database
from pimbot.store.sqlite_checkpoint import WalCheckpointer

PAGE = 4096
ROWS = 1_500  # one row a page: past SQLite's own 1,000-page checkpoint threshold


async def _open(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)"))
    return db


async def _fill(db: Database) -> None:
    async with db.read() as session:
        first = (await session.execute(text("SELECT count(*) FROM blobs"))).scalar_one()
    for start in range(first, first + ROWS, 50):
        async with db.transaction() as session:
            await session.execute(
                text("INSERT INTO blobs (id, body) VALUES (:id, randomblob(:size))"),
                [{"id": i, "size": PAGE - 200} for i in range(start, start + 50)])


async def _checkpointed(db: Database, at_least: int) -> None:
    checkpointer = db.wal_checkpointer
    assert checkpointer is not None
    for _ in range(1_000):  # 10 s
        if checkpointer.checkpoints >= at_least:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{checkpointer.checkpoints} checkpoints, not {at_least}, in 10 s")


def _size(path: Path | str) -> int:
    return os.stat(path).st_size


def _exists(path: Path | str) -> bool:
    return os.path.exists(path)


async def test_commits_on_the_loop_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "pimbot.db"
    db = await _open(path)
    assert db.wal_checkpointer is not None
    await db.wal_checkpointer.close()
    db.wal_checkpointer = WalCheckpointer(path, after_commit_s=3600)  # never comes round
    before = _size(path)
    await _fill(db)
    # 1,500 pages went through the WAL; none reached the database file: no commit checkpointed
    assert _size(path) == before
    assert _size(f"{path}-wal") > ROWS * PAGE
    await db.dispose()


async def test_the_checkpointer_copies_the_wal_into_the_file_soon_after_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pimbot.db"
    db = await _open(path)
    before = _size(path)
    await _fill(db)
    await _checkpointed(db, 1)
    assert _size(path) >= before + ROWS * PAGE
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM blobs"))).scalar_one() == ROWS
    await db.dispose()


async def test_the_wal_is_reused_from_its_start_after_a_checkpoint(tmp_path: Path) -> None:
    """Rounds of writes with checkpoints between them keep the WAL the size of one round, not
    of all of them (what SQLite's own 1,000-page checkpoints kept it to)."""
    path = tmp_path / "pimbot.db"
    db = await _open(path)
    wal = Path(f"{path}-wal")
    await _fill(db)
    await _checkpointed(db, 1)
    one_round = _size(wal)
    for round_ in range(1, 4):
        async with db.transaction() as session:
            await session.execute(text("DELETE FROM blobs"))
        await _checkpointed(db, 2 * round_)
        await _fill(db)
        await _checkpointed(db, 2 * round_ + 1)
    assert _size(wal) <= 1.5 * one_round
    await db.dispose()


async def test_closing_the_database_leaves_one_file_with_everything_in_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pimbot.db"
    db = await _open(path)
    await _fill(db)
    await _checkpointed(db, 1)  # the checkpointer's own connection is open
    await _fill(db)
    await db.dispose()
    assert not _exists(f"{path}-wal")
    again = Database(f"sqlite+aiosqlite:///{path}")
    async with again.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM blobs"))).scalar_one() == 2 * ROWS
    await again.dispose()
