"""``store/prepared.py``: statements compiled once and run at the session's driver connection
give what ``session.execute`` gave — the same values back for every column type, the same
rows changed, the same exceptions, inside the same transaction — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pimbot.store.database import Database
from pimbot.store.prepared import Prepared, run, run_many
from pimbot.store.tables import RequestRow, UtcDateTime

AT = datetime(2026, 12, 2, 4, 5, 6, 789012, tzinfo=UTC)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


KINDS = Table(
    "prepared_kinds", MetaData(),
    Column("id", Integer, primary_key=True),
    Column("big", BigInteger), Column("name", String(40)), Column("note", Text),
    Column("flag", Boolean), Column("doc", JSON), Column("at", UtcDateTime()),
    Column("colour", Enum(Colour)), Column("label", String(20), default="plain"),
)
COLUMNS = ("id", "big", "name", "note", "flag", "doc", "at", "colour")
INSERT = Prepared(insert(KINDS), keys=COLUMNS)
INSERT_RETURNING = Prepared(insert(KINDS).returning(KINDS.c.id, KINDS.c.label), keys=COLUMNS)
EVERY = select(*KINDS.c).order_by(KINDS.c.id)
SELECT_EVERY = Prepared(EVERY)
AMONG = Prepared(select(KINDS.c.id).where(KINDS.c.id.in_(bindparam("ids", expanding=True)),
                                          KINDS.c.at <= bindparam("now")).order_by(KINDS.c.id))
RENAME = Prepared(update(KINDS).where(KINDS.c.id == bindparam("key"),
                                      KINDS.c.name == bindparam("was"))
                  .values(name=bindparam("new")))
REQUEST_STATES = Prepared(select(RequestRow.id, RequestRow.state).order_by(RequestRow.id))
SET_STATE = Prepared(update(RequestRow.__table__)  # type: ignore[arg-type]
                     .where(RequestRow.__table__.c.id == bindparam("key"))
                     .values(state=bindparam("state")))


def _row(n: int, **changes: Any) -> dict[str, Any]:
    return {"id": n, "big": 2**40 + n, "name": f"n{n}", "note": "x" * 300, "flag": n % 2 == 0,
            "doc": {"n": n, "list": [1, "two", None], "nested": {"ok": True}},
            "at": AT + timedelta(minutes=n), "colour": Colour.BLUE if n % 2 else Colour.RED,
            **changes}


@pytest.fixture
async def kinds(db: Database) -> Database:
    async with db.engine.begin() as conn:
        await conn.run_sync(KINDS.metadata.create_all)
    return db


async def test_every_column_type_reads_back_as_session_execute_reads_it(kinds: Database
                                                                        ) -> None:
    async with kinds.transaction() as session:
        await run(session, INSERT, _row(1))
        await run_many(session, INSERT, [_row(2), _row(3, doc=None, at=None, flag=None)])
        await session.execute(insert(KINDS), [_row(4)])  # written by SQLAlchemy, read by both
    async with kinds.read() as session:
        ours = (await run(session, SELECT_EVERY)).rows
        theirs = [tuple(row) for row in (await session.execute(EVERY)).all()]
    assert ours == theirs
    assert ours[0] == (1, 2**40 + 1, "n1", "x" * 300, False, _row(1)["doc"], AT + timedelta(
        minutes=1), Colour.BLUE, "plain")
    assert ours[0][6].tzinfo is not None  # an aware UTC time, as UtcDateTime gives it
    assert ours[2][4:7] == (None, None, None)


async def test_expanding_lists_of_any_length_and_the_rows_changed(kinds: Database) -> None:
    async with kinds.transaction() as session:
        await run_many(session, INSERT, [_row(n) for n in range(1, 6)])
        # given in another zone: the parameter goes through UtcDateTime as SQLAlchemy sends it
        later = (AT + timedelta(minutes=3)).astimezone(timezone(timedelta(hours=-5)))
        assert (await run(session, AMONG, {"ids": [], "now": later})).scalars() == []
        assert (await run(session, AMONG, {"ids": [5], "now": later})).scalars() == []
        assert (await run(session, AMONG, {"ids": [5, 2, 3, 9], "now": later})
                ).scalars() == [2, 3]
        assert (await run(session, AMONG, {"ids": [1, 2], "now": later})).scalars() == [1, 2]
        assert (await run(session, RENAME, {"key": 2, "was": "n2", "new": "two"})
                ).rowcount == 1
        # a compare-and-set that lost: the value it expected is gone
        assert (await run(session, RENAME, {"key": 2, "was": "n2", "new": "again"})
                ).rowcount == 0
        assert (await session.execute(select(KINDS.c.name).where(KINDS.c.id == 2))
                ).scalar_one() == "two"


async def test_returning_gives_each_row_in_order_with_its_default(kinds: Database) -> None:
    async with kinds.transaction() as session:
        one = await run(session, INSERT_RETURNING, _row(7))
        many = await run_many(session, INSERT_RETURNING, [_row(9), _row(8)])
    assert one.rows == [(7, "plain")]
    assert many.rows == [(9, "plain"), (8, "plain")]


async def test_a_constraint_error_is_sqlalchemys_and_the_transaction_rolls_back(
        kinds: Database) -> None:
    with pytest.raises(IntegrityError) as raised:
        async with kinds.transaction() as session:
            await run(session, INSERT, _row(1))
            await run(session, INSERT, _row(1))  # the same primary key
    assert raised.value.orig is not None
    with pytest.raises(IntegrityError):
        async with kinds.transaction() as session:
            await run_many(session, INSERT, [_row(2), _row(2)])
    async with kinds.transaction() as session:  # the next transaction starts clean
        await run(session, INSERT, _row(3))
    async with kinds.read() as session:
        assert [row[0] for row in (await run(session, SELECT_EVERY)).rows] == [3]


async def test_a_statement_first_in_a_transaction_is_inside_it(kinds: Database) -> None:
    """On PostgreSQL SQLAlchemy begins lazily, at its own first statement: one sent straight
    to asyncpg before that would run in autocommit and survive the rollback."""
    async with kinds.sessions() as session:
        await run(session, INSERT, _row(1))
        await session.rollback()
    with pytest.raises(RuntimeError):
        async with kinds.transaction() as session:
            await run(session, INSERT, _row(2))
            raise RuntimeError("the caller fails after the statement")
    async with kinds.read() as session:
        assert (await run(session, SELECT_EVERY)).rows == []
        assert (await session.execute(select(func.count()).select_from(KINDS))).scalar() == 0


async def test_pending_orm_rows_are_written_before_the_statement(db: Database) -> None:
    async with db.transaction() as session:
        session.add(RequestRow(id="r1", kind="activation", email="bob@example.com", role="db",
                               state="pending_approval", requested_at=AT, start_at=AT))
        assert (await run(session, REQUEST_STATES)).rows == [("r1", "pending_approval")]
        assert (await run(session, SET_STATE, {"key": "r1", "state": "approved"})
                ).rowcount == 1


async def test_a_row_the_session_holds_sees_what_it_saw_with_session_execute(
        db: Database) -> None:
    """Core statements never refreshed the session's objects; after the transaction every
    reader sees the new value, whichever way it was written."""
    async with db.transaction() as session:
        for key in ("r1", "r2"):
            session.add(RequestRow(id=key, kind="activation", email="bob@example.com",
                                   role="db", state="pending_approval", requested_at=AT,
                                   start_at=AT))
    seen: dict[str, str] = {}
    async with db.transaction() as session:
        ours, theirs = await session.get(RequestRow, "r1"), await session.get(RequestRow, "r2")
        assert ours is not None and theirs is not None
        await run(session, SET_STATE, {"key": "r1", "state": "approved"})
        await session.execute(SET_STATE.statement, {"key": "r2", "state": "approved"})
        again_ours, again_theirs = (await session.get(RequestRow, "r1"),
                                    await session.get(RequestRow, "r2"))
        assert again_ours is ours and again_theirs is theirs
        seen = {"r1": ours.state, "r2": theirs.state}
    assert seen["r1"] == seen["r2"]
    async with db.read() as session:
        assert (await run(session, REQUEST_STATES)).rows == [("r1", "approved"),
                                                             ("r2", "approved")]


async def test_cursor_listeners_see_each_statement(kinds: Database) -> None:
    seen: list[tuple[str, bool]] = []

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any,
               many: bool) -> None:
        seen.append((statement.split()[0], many))

    event.listen(kinds.engine.sync_engine, "before_cursor_execute", before)
    try:
        async with kinds.transaction() as session:
            await run(session, INSERT, _row(1))
            await run_many(session, INSERT, [_row(2), _row(3)])
            await run(session, SELECT_EVERY)
    finally:
        event.remove(kinds.engine.sync_engine, "before_cursor_execute", before)
    assert [one for one in seen if one[0] != "BEGIN"] == [
        ("INSERT", False), ("INSERT", True), ("SELECT", False)]


async def test_of_two_compare_and_sets_at_once_one_wins(kinds: Database) -> None:
    """Two transactions set the same row from the same expected value: the second waits for
    the first (PostgreSQL's row lock, SQLite's single writer) and then finds 0 rows."""
    async with kinds.transaction() as session:
        await run(session, INSERT, _row(1))
    first_holds = asyncio.Event()

    async def rename(new: str, hold: bool) -> int:
        async with kinds.transaction() as session:
            changed = (await run(session, RENAME, {"key": 1, "was": "n1", "new": new})).rowcount
            if hold:
                first_holds.set()
                await asyncio.sleep(0.05)  # the other one is waiting meanwhile
            return changed

    async def second() -> int:
        await first_holds.wait()
        return await rename("second", False)

    assert await asyncio.gather(rename("first", True), second()) == [1, 0]
    async with kinds.read() as session:
        assert (await run(session, SELECT_EVERY)).rows[0][2] == "first"


def test_statements_that_would_bypass_the_orm_are_refused() -> None:
    with pytest.raises(TypeError):
        Prepared(select(RequestRow))  # loads objects into the identity map
    with pytest.raises(TypeError):
        Prepared(update(RequestRow).values(state="x"))  # synchronises the identity map
