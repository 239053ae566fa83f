"""Shared fixtures: a migrated database on SQLite and, where configured, PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pimbot.store.database import Database
from postgres_support import discover, postgres_url

_TEMPLATE: dict[str, str] = {}
_SQLITE_TEMPLATE: list[Path] = []
_POSTGRES_STATUS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Find the PostgreSQL for the tests once (see postgres_support)."""
    _POSTGRES_STATUS[:] = [discover()]


# The longest modules, run first: under `make test`'s `-n 2 --dist loadscope` a module runs
# on one worker, and one that starts last keeps that worker busy alone at the end.
LONGEST_FIRST = (
    "tests/replicas/test_kill_points.py",
    "tests/replicas/test_replicas_crash.py",
    "tests/replicas/test_lb_slack_http.py",
    "tests/e2e/test_console_scenarios.py",
    "tests/e2e/test_microsoft_e2e.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the ``LONGEST_FIRST`` modules first (a stable sort: the same order on every
    xdist worker, as xdist requires)."""
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Say in one line which PostgreSQL the run uses, or why none (also under -q)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and _POSTGRES_STATUS:
        reporter.write_line(_POSTGRES_STATUS[0])


async def _template(admin_url: str) -> str:
    """One migrated database per test session; each test copies it (CREATE … TEMPLATE)."""
    if admin_url in _TEMPLATE:
        return _TEMPLATE[admin_url]
    import asyncpg

    name = "pimbot_tpl_" + secrets.token_hex(6)
    conn = await _connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    database = Database(_url_for(admin_url, name))
    try:
        await database.upgrade()
    finally:
        await database.dispose()
    _TEMPLATE[admin_url] = name
    del asyncpg
    return name


def _url_for(admin_url: str, name: str) -> str:
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    base = plain.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


async def _connect(admin_url: str):  # type: ignore[no-untyped-def]
    import asyncpg

    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        return await asyncpg.connect(plain)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {plain} is not reachable: {exc}")


async def _create_pg_database(admin_url: str) -> tuple[str, str]:
    template = await _template(admin_url)
    name = "pimbot_t_" + secrets.token_hex(6)
    conn = await _connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name, _url_for(admin_url, name)


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
        database = await _sqlite_copy(request, tmp_path)
        yield database
        await database.dispose()
        return
    admin = postgres_url()
    assert admin is not None
    name, url = await _create_pg_database(admin)
    database = Database(url)
    try:
        await database.upgrade()  # a no-op on the migrated copy; proves the revision is current
        yield database
    finally:
        await database.dispose()
        await _drop_pg_database(admin, name)


@pytest.fixture(scope="session", autouse=True)
def _drop_template() -> Iterator[None]:
    yield
    for admin, name in list(_TEMPLATE.items()):
        asyncio.run(_drop_pg_database(admin, name))


async def _sqlite_copy(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A copy of one SQLite file migrated once per worker (migrating costs 1-2 s of fsyncs
    per test; copying a file, milliseconds)."""
    if not _SQLITE_TEMPLATE:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        template = factory.mktemp("sqlite-template") / "pimbot.db"
        database = Database(f"sqlite+aiosqlite:///{template}")
        await database.upgrade()
        await database.dispose()
        assert not template.with_name("pimbot.db-wal").exists()  # one self-contained file
        _SQLITE_TEMPLATE.append(template)
    shutil.copyfile(_SQLITE_TEMPLATE[0], tmp_path / "pimbot.db")
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}")
    await database.upgrade()  # a no-op on the migrated copy; proves the revision is current
    return database


@pytest.fixture
async def sqlite_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    database = await _sqlite_copy(request, tmp_path)
    yield database
    await database.dispose()
