"""A new request row (``records.new_request``) holds every column, its defaults included,
and is written by ``insert_request`` as it reads back; a name that is no column is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from pimbot.workflow.records import get_request, insert_request, new_request

AT = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


async def test_a_new_request_is_written_as_it_reads_back(db: Database) -> None:
    row = new_request(id="r1", kind="activation", email="a@example.com", role="prod-db",
                      state="pending_approval", duration_s=3600, reason="restore",
                      platform="console", requested_at=AT, start_at=AT, min_approvals=1)
    columns = [column.key for column in inspect(RequestRow).column_attrs]
    mine = {key: getattr(row, key) for key in columns}
    assert mine["version"] == 1 and mine["votes_count"] == 0 and mine["escalation"] == 0
    assert mine["ticket"] == "" and mine["grant_id"] is None  # defaults and blanks
    async with db.transaction() as session:
        await insert_request(session, row)
    async with db.read() as session:
        back = await get_request(session, "r1")
        assert {key: getattr(back, key) for key in columns} == mine


def test_a_name_that_is_no_column_is_refused() -> None:
    with pytest.raises(TypeError, match="emial"):
        new_request(id="r1", emial="a@example.com")
