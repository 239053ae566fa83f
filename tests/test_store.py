from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import PersonRow


async def test_times_round_trip_as_aware_utc(db: Database) -> None:
    stored = datetime(2026, 11, 2, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    async with db.transaction() as session:
        session.add(PersonRow(email="bob@example.com", display_name="Bob", created_at=stored))
    async with db.read() as session:
        row = (await session.execute(select(PersonRow))).scalar_one()
    assert row.created_at == stored
    assert row.created_at.tzinfo is not None
    assert row.created_at.utcoffset() == timedelta(0)
    assert row.created_at.hour == 8


async def test_failed_transaction_leaves_nothing(db: Database) -> None:
    try:
        async with db.transaction() as session:
            session.add(PersonRow(email="x@example.com", created_at=datetime.now(UTC)))
            await session.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with db.read() as session:
        assert (await session.execute(select(PersonRow))).first() is None


async def test_readiness_ping(db: Database) -> None:
    assert await db.ping()
