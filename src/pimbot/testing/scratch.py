"""Throw-away PostgreSQL databases for benchmarks and tools (dropped when the stack closes)."""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack


def plain_dsn(url: str) -> str:
    """An SQLAlchemy asyncpg URL as the DSN asyncpg itself takes."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def postgres_unreachable(admin_url: str) -> str | None:
    """None if PostgreSQL answers at ``admin_url``, else why not (one line)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(plain_dsn(admin_url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"skipped: {type(exc).__name__}"
    await conn.close()
    return None


async def scratch_postgres(admin_url: str, stack: AsyncExitStack, prefix: str = "pimbot_bench_"
                           ) -> str:
    """CREATE a database next to ``admin_url``'s; DROP it when ``stack`` closes; its URL."""
    import asyncpg

    name = prefix + secrets.token_hex(6)
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(plain_dsn(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    stack.push_async_callback(drop)
    return admin_url.rsplit("/", 1)[0] + "/" + name
