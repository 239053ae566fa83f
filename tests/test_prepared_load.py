"""``store/prepared_load.py``: objects read at the driver are the session's objects as the
ORM's own loading makes them — equal values, one object per identity, a held object's
unflushed change kept, its expired attributes read again, its version the compare-and-set
of its next flush — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.orm.exc import StaleDataError

from pimbot.store.database import Database
from pimbot.store.prepared_load import PreparedLoad, load
from pimbot.store.tables import RequestRow

AT = datetime(2026, 12, 2, 4, 5, 6, 789012, tzinfo=UTC)
BY_EMAIL = select(RequestRow).where(RequestRow.email == bindparam("email")) \
    .order_by(RequestRow.id)
LOADER = PreparedLoad(BY_EMAIL)


def _request(key: str, **changes: object) -> RequestRow:
    values: dict[str, object] = {
        "id": key, "kind": "activation", "email": "bob@example.com", "role": "db",
        "state": "pending_approval", "requested_at": AT, "start_at": AT,
        "expires_at": AT + timedelta(hours=1), "duration_s": 3600, "reason": "restore"}
    return RequestRow(**(values | changes))


def _values(row: RequestRow) -> dict[str, object]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(RequestRow).column_attrs}


@pytest.fixture
async def stored(db: Database) -> Database:
    async with db.transaction() as session:
        session.add_all([_request("r1"), _request("r2", state="approved", expires_at=None)])
    return db


async def test_objects_equal_what_the_orm_loads(stored: Database) -> None:
    async with stored.read() as session:
        ours = [_values(row) for row in await load(session, LOADER, {"email": "bob@example.com"})]
    async with stored.read() as session:
        theirs = [_values(row) for row in (await session.scalars(
            BY_EMAIL, {"email": "bob@example.com"})).all()]
    assert ours == theirs and len(ours) == 2
    assert ours[0]["requested_at"] == AT and ours[1]["expires_at"] is None


async def test_one_object_per_identity_and_a_held_change_is_kept(stored: Database) -> None:
    async with stored.transaction() as session:
        held = await session.get(RequestRow, "r1")
        assert held is not None
        held.reason = "changed, not flushed yet"
        with session.no_autoflush:
            first, second = await load(session, LOADER, {"email": "bob@example.com"})
        assert first is held and held.reason == "changed, not flushed yet"
        assert await session.get(RequestRow, "r2") is second
        assert not inspect(second).modified  # loaded clean, as the ORM leaves it


async def test_expired_attributes_are_read_again(stored: Database) -> None:
    async with stored.transaction() as session:
        held = await session.get(RequestRow, "r1")
        assert held is not None
        await session.execute(update(RequestRow.__table__).where(  # type: ignore[arg-type]
            RequestRow.__table__.c.id == "r1").values(reason="written by Core"))
        session.expire(held, ["reason"])
        await load(session, LOADER, {"email": "bob@example.com"})
        assert "reason" not in inspect(held).unloaded
        assert held.reason == "written by Core"


async def test_a_loaded_object_flushes_under_its_version(stored: Database) -> None:
    async with stored.transaction() as session:
        row = (await load(session, LOADER, {"email": "bob@example.com"}))[0]
        row.state = "approved"
    async with stored.read() as session:
        again = await session.get(RequestRow, "r1")
        assert again is not None and (again.state, again.version) == ("approved", 2)
    with pytest.raises(StaleDataError):  # changed by someone else since it was read
        async with stored.transaction() as session:
            row = (await load(session, LOADER, {"email": "bob@example.com"}))[0]
            await session.execute(update(RequestRow.__table__)  # type: ignore[arg-type]
                                  .where(RequestRow.__table__.c.id == "r1")
                                  .values(version=RequestRow.__table__.c.version + 1))
            row.state = "denied"
            await session.flush()


def test_selects_the_orm_would_load_differently_are_refused() -> None:
    with pytest.raises(TypeError):
        PreparedLoad(BY_EMAIL.with_for_update())
    with pytest.raises(TypeError):
        PreparedLoad(BY_EMAIL.execution_options(populate_existing=True))
