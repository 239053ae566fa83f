"""``write_row``: one changed request written under its version's compare-and-set, as the
ORM's flush would (a row changed since it was read is not written; a later change in the
same transaction compares against the version just written)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.orm.exc import StaleDataError

from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from pimbot.store.versioned import write_row

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _request() -> RequestRow:
    return RequestRow(id="r1", kind="activation", email="bob@example.com", role="db",
                      state="pending_approval", requested_at=AT, start_at=AT)


async def _stored(db: Database) -> tuple[str, int, str]:
    async with db.read() as session:
        row = await session.get(RequestRow, "r1")
        assert row is not None
        return row.state, row.version, row.decided_by


async def test_a_change_is_written_and_the_next_one_compares_against_it(db: Database) -> None:
    async with db.transaction() as session:
        session.add(_request())
    async with db.transaction() as session:
        row = await session.get(RequestRow, "r1")
        assert row is not None
        row.state, row.decided_by = "approved", "lead@example.com"
        await write_row(session, row)
        assert row.version == 2
        row.decided_by = "lead2@example.com"
        await session.flush()  # the ORM's own compare-and-set, against version 2
    assert await _stored(db) == ("approved", 3, "lead2@example.com")


async def test_a_row_changed_since_it_was_read_is_not_written(db: Database) -> None:
    async with db.transaction() as session:
        session.add(_request())
    async with db.read() as session:
        seen = await session.get(RequestRow, "r1")  # what a turn read, version 1
    assert seen is not None
    async with db.transaction() as session:  # someone else's change commits meanwhile
        row = await session.get(RequestRow, "r1")
        assert row is not None
        row.state = "cancelled"
        await write_row(session, row)
    with pytest.raises(StaleDataError):
        async with db.transaction() as session:
            late = await session.merge(seen, load=False)
            late.state = "approved"
            await write_row(session, late)
    assert await _stored(db) == ("cancelled", 2, "")


async def test_a_written_row_leaves_nothing_for_the_commit_to_flush(db: Database) -> None:
    """Once ``write_row`` has written every change of the row, the row is clean: the commit
    (or the next flush) does not run the unit of work over it again."""
    async with db.transaction() as session:
        session.add(_request())
    flushes: list[object] = []
    async with db.transaction() as session:
        event.listen(session.sync_session, "before_flush", lambda *args: flushes.append(args))
        row = await session.get(RequestRow, "r1")
        assert row is not None
        row.state = "approved"
        await write_row(session, row)
        assert row not in session.dirty
    assert flushes == []
    assert await _stored(db) == ("approved", 2, "")
