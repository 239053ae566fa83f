"""Times in the database: aware UTC in, aware UTC out, on both backends; on SQLite the text
SQLAlchemy's DATETIME has always written (``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC), so rows
written before ``UtcDateTime`` converted on its own compare in order with rows written since,
and a naive time is refused before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from pimbot.store.database import Database
from pimbot.store.tables import UtcDateTime

TIMES = Table("stored_times", MetaData(), Column("id", Integer, primary_key=True),
              Column("at", UtcDateTime()))
AT = datetime(2026, 11, 2, 15, 0, 7, 25, tzinfo=UTC)
EAST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
async def times(db: Database) -> Database:
    async with db.engine.begin() as conn:
        await conn.run_sync(TIMES.metadata.create_all)
    return db


async def test_a_time_in_any_zone_reads_back_as_the_same_instant_in_utc(times: Database
                                                                        ) -> None:
    async with times.transaction() as session:
        await session.execute(insert(TIMES), [
            {"id": 1, "at": AT.astimezone(EAST)}, {"id": 2, "at": AT + timedelta(seconds=1)},
            {"id": 3, "at": None}])
    async with times.read() as session:
        back = dict((await session.execute(select(TIMES.c.id, TIMES.c.at))).all())
        # compared in SQL: a bound time in another zone against the stored ones
        later = (AT + timedelta(microseconds=1)).astimezone(EAST)
        earlier = (await session.execute(select(TIMES.c.id).where(TIMES.c.at < later))).all()
    assert back == {1: AT, 2: AT + timedelta(seconds=1), 3: None}
    assert back[1] is not None and back[1].tzinfo is UTC
    assert [row[0] for row in earlier] == [1]


async def test_sqlite_stores_the_text_it_always_stored(times: Database) -> None:
    if not times.is_sqlite:
        pytest.skip("the stored text is SQLite's")
    async with times.transaction() as session:
        await session.execute(insert(TIMES), [{"id": 1, "at": AT.astimezone(EAST)},
                                              {"id": 2, "at": AT.replace(microsecond=0)}])
        raw = (await session.execute(text("SELECT at FROM stored_times ORDER BY id"))).all()
        # a row written before, as SQLAlchemy's DATETIME wrote it, reads back the same way
        await session.execute(text("INSERT INTO stored_times VALUES (3, '2026-11-02 15:00:07')"))
        old = (await session.execute(select(TIMES.c.at).where(TIMES.c.id == 3))).scalar()
    assert [row[0] for row in raw] == ["2026-11-02 15:00:07.000025", "2026-11-02 15:00:07.000000"]
    assert old == AT.replace(microsecond=0) and old.tzinfo is UTC


async def test_a_naive_time_is_refused_and_nothing_is_written(times: Database) -> None:
    with pytest.raises(Exception, match="naive"):
        async with times.transaction() as session:
            await session.execute(insert(TIMES), [{"id": 1, "at": datetime(2026, 11, 2, 15)}])
    async with times.read() as session:
        assert (await session.execute(select(TIMES.c.id))).all() == []
