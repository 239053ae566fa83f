"""A real PostgreSQL grant and revoke, driven through ``pimbot run`` on the console."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from console_process import console_env, open_console

from postgres_support import postgres_url

pytestmark = pytest.mark.postgres

POLICY = """\
admins: [sec-lead@example.com]
providers:
  proddb: {{type: postgres, dsn: "{dsn}", login: "{{email_local}}"}}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: proddb
    grant: {{role: {role}}}
    max_duration: 1h
assignments:
  - {{user: {user}, role: prod-db-admin, type: eligible}}
"""

_IS_MEMBER = """
SELECT EXISTS (
  SELECT 1 FROM pg_auth_members m
  JOIN pg_roles r ON r.oid = m.roleid
  JOIN pg_roles u ON u.oid = m.member
  WHERE r.rolname = $1 AND u.rolname = $2)
"""


@dataclass(frozen=True)
class Server:
    """The local PostgreSQL, a role made for this test, and the person who may hold it."""

    dsn: str
    conn: Any
    role: str
    user: str  # bob.TAG@example.com, so {email_local} is the login bob_TAG
    login: str

    async def is_member(self) -> bool:
        return bool(await self.conn.fetchval(_IS_MEMBER, self.role, self.login))


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    admin = postgres_url()
    assert admin is not None
    dsn = admin.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    tag = secrets.token_hex(4)
    made = Server(dsn, conn, f"pimbot_e2e_{tag}", f"bob.{tag}@example.com", f"bob_{tag}")
    await conn.execute(f'CREATE ROLE "{made.role}" NOLOGIN')
    try:
        yield made
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{made.login}"')
        await conn.execute(f'DROP ROLE IF EXISTS "{made.login}_own"')
        await conn.execute(f'DROP ROLE IF EXISTS "{made.role}"')
        await conn.close()


async def test_an_activation_makes_the_login_a_member_until_it_is_deactivated(
    tmp_path: Path, server: Server
) -> None:
    policy = tmp_path / "pg-policy.yaml"
    policy.write_text(
        POLICY.format(dsn=server.dsn, role=server.role, user=server.user), encoding="utf-8"
    )
    async with open_console(tmp_path, console_env(tmp_path, policy)) as console:
        await console.type(f"as {server.user}", "activate prod-db-admin for 30m reason fix index")
        await console.read_until("Your activation of prod-db-admin: active")
        assert await server.is_member()
        await console.type("deactivate prod-db-admin")
        await console.read_until("Access removed at the provider")
        assert not await server.is_member()
        run = await console.finish()

    assert run.code == 0, run.err
    assert not await server.is_member()
    run.answer("Deactivated prod-db-admin")


async def test_a_second_person_on_the_same_login_gets_a_failed_grant_with_the_reason(
    tmp_path: Path, server: Server
) -> None:
    """bob.TAG@ holds the login bob_TAG; bob-TAG@ (assigned from chat, so unknown to the
    policy's own checks) maps to it too, and is refused rather than handed bob's login."""
    policy = tmp_path / "pg-policy.yaml"
    policy.write_text(
        POLICY.format(dsn=server.dsn, role=server.role, user=server.user), encoding="utf-8"
    )
    other = server.user.replace("bob.", "bob-")
    async with open_console(tmp_path, console_env(tmp_path, policy)) as console:
        await console.type(f"as {server.user}", "activate prod-db-admin for 30m reason fix index")
        await console.read_until("Your activation of prod-db-admin: active")
        await console.type("as sec-lead@example.com", f"assign {other} prod-db-admin eligible")
        await console.type(f"as {other}", "activate prod-db-admin for 30m reason me too")
        failed = await console.read_until("the grant failed")
        assert f"login {server.login} belongs to another person" in failed
        assert "(error e" in failed, "with the id of the audit event that has the detail"
        run = await console.finish()  # after the clean-up revoke of the failed grant, too
    assert run.code == 0, run.err
    assert await server.is_member()  # bob's grant is untouched
