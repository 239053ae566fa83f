"""The Alembic migrations build exactly the tables ``store/tables.py`` declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pimbot.store.database import Database
from pimbot.store.tables import Base


async def test_the_migrated_schema_matches_the_tables(db: Database) -> None:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == []


def test_head_names_the_newest_migration() -> None:
    """``migrate.HEAD`` lets a start skip Alembic on a database already there; a migration
    added without moving it would leave such databases on the old schema."""
    from alembic.script import ScriptDirectory

    from pimbot.store.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


async def test_an_upgrade_from_an_older_revision_still_migrates(tmp_path: Any) -> None:
    """The skip is for a database at HEAD only: one an older pimbot left is upgraded."""
    from alembic import command
    from sqlalchemy import text

    from pimbot.store.migrate import HEAD, alembic_config, current_revisions

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await database.upgrade()
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0015"))
        async with database.engine.connect() as conn:
            assert await conn.run_sync(current_revisions) == ["0015"]
            columns = await conn.execute(text("PRAGMA table_info(inbound_deliveries)"))
            assert "done_at" not in {row[1] for row in columns}
        await database.upgrade()
        async with database.engine.connect() as conn:
            assert await conn.run_sync(current_revisions) == [HEAD]
            columns = await conn.execute(text("PRAGMA table_info(inbound_deliveries)"))
            assert {"owner", "done_at"} <= {row[1] for row in columns}
    finally:
        await database.dispose()


async def test_an_approvers_comment_kept_as_a_decision_note_is_cleared_by_the_upgrade(
        tmp_path: Any) -> None:
    """0020: a note that is an approve vote's comment goes (pimbot would quote it as its own
    words); a denial's reason and pimbot's own notes stay."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import select

    from pimbot.store.migrate import alembic_config
    from pimbot.store.tables import RequestRow, VoteRow

    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await database.upgrade()
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0019"))
        notes = {"approved-then-cancelled": ("cancelled", "looks fine, by sec-lead"),
                 "denied": ("denied", "not during the freeze"),
                 "ended-by-pimbot": ("revoked", "assignment removed")}
        async with database.sessions() as session, session.begin():
            for key, (state, note) in notes.items():
                session.add(RequestRow(id=key, kind="activation", email="bob@example.com",
                                       role="db", state=state, requested_at=at, start_at=at,
                                       decision_note=note))
            await session.flush()
            for key, (_, note) in notes.items():
                decision = "deny" if key == "denied" else "approve"
                comment = "ok" if key == "ended-by-pimbot" else note
                session.add(VoteRow(request_id=key, approver="alice@example.com",
                                    decision=decision, comment=comment, at=at))
        await database.upgrade()
        async with database.sessions() as session:
            kept = dict((await session.execute(
                select(RequestRow.id, RequestRow.decision_note))).all())
        assert kept == {"approved-then-cancelled": "", "denied": "not during the freeze",
                        "ended-by-pimbot": "assignment removed"}
    finally:
        await database.dispose()
