"""Alembic, driven programmatically over the async engine (``pimbot db upgrade``).

Alembic (with Mako) is imported only when there is something to migrate: a start on a
database already at ``HEAD`` reads ``alembic_version`` and goes on, a second faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).parent / "alembic"
# The newest revision under alembic/versions (tests/test_migrations.py checks it is Alembic's
# head): a new migration must change it, or databases at the old head are not upgraded.
HEAD = "0021"


def alembic_config(connection: Any | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revisions(connection: Any) -> list[str]:
    """What ``alembic_version`` holds (nothing on a new database)."""
    if not inspect(connection).has_table("alembic_version"):
        return []
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return [str(row[0]) for row in rows]


def _upgrade(connection: Any, revision: str) -> None:
    if revision == "head" and current_revisions(connection) == [HEAD]:
        return
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: _upgrade(sync_conn, revision))
