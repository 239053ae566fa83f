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
