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
