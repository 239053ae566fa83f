"""Shared fixtures: a migrated database on SQLite and, where configured, PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pimbot.store.database import Database

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def postgres_url() -> str | None:
    """The admin URL of the local PostgreSQL, or None (a failure under CI=true)."""
    url = os.environ.get("PIMBOT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("PIMBOT_TEST_POSTGRES_URL is not set under CI=true")
        pytest.skip("PIMBOT_TEST_POSTGRES_URL is not set (PostgreSQL tests skipped locally)")
    return url


async def _create_pg_database(admin_url: str) -> tuple[str, str]:
    import asyncpg

    name = "pimbot_t_" + secrets.token_hex(6)
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncpg.connect(plain)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {plain} is not reachable: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = plain.rsplit("/", 1)[0]
    return name, f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


async def _drop_pg_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A freshly migrated database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}")
        await database.upgrade()
        yield database
        await database.dispose()
        return
    admin = postgres_url()
    assert admin is not None
    name, url = await _create_pg_database(admin)
    database = Database(url)
    try:
        await database.upgrade()
        yield database
    finally:
        await database.dispose()
        await _drop_pg_database(admin, name)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}")
    await database.upgrade()
    yield database
    await database.dispose()
