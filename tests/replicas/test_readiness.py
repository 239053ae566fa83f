"""``/readyz`` of a real ``pimbot run`` turns unready while its PostgreSQL database cannot be
reached (connections terminated, new ones refused) and ready again once it can; ``/healthz``
stays up throughout, and the process shuts down cleanly afterwards."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from pimbot.secretbox import generate_key
from postgres_support import postgres_url
from replica_process import Replica, replica_env, start_replicas

POLICY = """\
admins: [sec-lead@example.com]
providers:
  nothing: {type: noop}
roles:
  r1: {provider: nothing, max_duration: 4h}
"""
WAIT = 30.0  # seconds to see a readiness change before failing (never a timing assertion)


async def _until_status(replica: Replica, wanted: int) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        status, text = await replica.get("/readyz")
        if status == wanted:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {status} ({text.strip()}):\n"
                                 + replica.output()[-3000:])
        await asyncio.sleep(0.2)


async def _admin() -> asyncpg.Connection:
    admin = postgres_url()
    assert admin is not None
    return await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://"))


@pytest.mark.postgres
async def test_readyz_follows_the_database_away_and_back(tmp_path: Path, empty_pg: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = replica_env(tmp_path, empty_pg, policy, PIMBOT_SECRET_KEY=generate_key())
    [replica] = await start_replicas(tmp_path, env, 1)
    name = make_url(empty_pg).database
    conn = await _admin()
    try:
        await replica.wait_ready()
        assert "policy applied" in await _until_status(replica, 200)

        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        assert "database unreachable" in await _until_status(replica, 503)
        assert (await replica.get("/healthz"))[0] == 200, "the process itself is alive"

        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await _until_status(replica, 200)
        assert await replica.stop() == 0, replica.output()
    finally:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await conn.close()
        await replica.reap()
