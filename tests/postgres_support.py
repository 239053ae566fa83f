"""Where the local PostgreSQL for tests is (a failure, not a skip, under CI=true).

``PIMBOT_TEST_POSTGRES_URL`` names it; without it, the local default
(``postgres@127.0.0.1:5432/test``, the one ``.ci/run`` starts) is used when it answers, so a
plain ``make test`` on a machine with PostgreSQL runs the PostgreSQL tests too. ``discover``
runs once per test session (``conftest.pytest_configure``); the answer goes into the
environment, and the header of the run says in one line which PostgreSQL is used, or why none.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping, MutableMapping

import pytest

ENV = "PIMBOT_TEST_POSTGRES_URL"
LOCAL_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
_STATUS: dict[str, str] = {}  # "url" (the one used) or "missing" (why there is none)


def discover(env: MutableMapping[str, str] | None = None, local: str = LOCAL_DEFAULT) -> str:
    """Decide once which PostgreSQL the tests use; return the one-line status to print."""
    environ: MutableMapping[str, str] = os.environ if env is None else env
    _STATUS.clear()
    given = environ.get(ENV, "").strip()
    if given:
        _STATUS["url"] = given
        return f"PostgreSQL tests: {_shown(given)} (from {ENV})"
    problem = _probe(local)
    if problem is None:
        environ[ENV] = local  # subprocesses and later fixtures see the same answer
        _STATUS["url"] = local
        return f"PostgreSQL tests: {_shown(local)} (found on the default local port)"
    _STATUS["missing"] = problem
    verdict = "they FAIL under CI=true" if environ.get("CI") == "true" else "they are skipped"
    return (f"PostgreSQL tests: no PostgreSQL ({problem}); {verdict} "
            f"(set {ENV}=postgresql+asyncpg://USER@HOST:PORT/DB)")


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _probe(url: str, timeout: float = 2.0) -> str | None:
    """None when ``url`` accepts a connection, else why not (one short phrase)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host, port = parsed.host or "127.0.0.1", parsed.port or 5432
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return f"nothing answers on {host}:{port}"
    try:
        asyncio.run(_connect(url, timeout))
    except Exception as exc:  # auth, missing database, …: say which, in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{host}:{port} refused {_shown(url)}: {first}"
    return None


async def _connect(url: str, seconds: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"),
                                 timeout=seconds)
    await conn.close()


def postgres_url(env: Mapping[str, str] | None = None) -> str | None:
    """The admin URL of the PostgreSQL for tests, or a skip (a failure under CI=true)."""
    environ = os.environ if env is None else env
    url = environ.get(ENV) or _STATUS.get("url")
    if url:
        return url
    why = _STATUS.get("missing", f"{ENV} is not set")
    if environ.get("CI") == "true":
        pytest.fail(f"no PostgreSQL for the tests under CI=true: {why}")
    pytest.skip(f"no PostgreSQL ({why})")
