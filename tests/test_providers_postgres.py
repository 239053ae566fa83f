"""The postgres provider makes real grants; names are validated and quoted, never spliced."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from pimbot.domain.model import ProviderConfig
from pimbot.providers import ProviderError, build_providers
from pimbot.providers.postgres import login_for
from postgres_support import postgres_url
from providers_support import make_target


@dataclass
class Cluster:
    """An admin connection plus a unique role to grant; everything made is dropped after."""

    admin_url: str
    conn: Any
    role: str
    tag: str
    logins: list[str] = field(default_factory=list)

    def provider(self, login: str) -> Any:
        config = ProviderConfig("proddb", "postgres", {"dsn": self.admin_url, "login": login})
        return build_providers({"proddb": config}, {})["proddb"]

    async def role_row(self, name: str) -> Any:
        self.logins.append(name)
        return await self.conn.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", name)

    async def count_roles(self) -> int:
        """The roles this test could have made or removed: every role with its tag (the
        provider's logins come from ``pimbot_t_TAG_…``) and the admin itself. Not every role:
        tests in other workers (and other checkouts) make and drop theirs meanwhile."""
        return int(await self.conn.fetchval(
            "SELECT count(*) FROM pg_roles WHERE strpos(rolname, $1) > 0 "
            "OR rolname = current_user", self.tag))


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    admin = postgres_url()
    assert admin is not None
    conn = await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://"))
    tag = secrets.token_hex(4)
    role = f"pimbot_t_app_admin_{tag}"
    await conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
    made = Cluster(admin, conn, role, tag)
    try:
        yield made
    finally:
        for login in made.logins:
            await conn.execute(f'DROP ROLE IF EXISTS "{login}"')
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()


@pytest.mark.postgres
async def test_grant_creates_a_login_role_that_can_log_in(cluster: Cluster) -> None:
    provider = cluster.provider(f"pimbot_t_{cluster.tag}_{{email_local}}")
    target = make_target("O'Brien.Smith-Jr+pim@example.com", {"role": cluster.role})
    ref = await provider.grant(target)

    login = f"pimbot_t_{cluster.tag}_o_brien_smith_jr_pim"
    row = await cluster.role_row(login)
    assert ref is not None and json.loads(ref) == {"login": login, "role": cluster.role}
    assert row["rolcanlogin"] is True
    assert row["rolsuper"] is False
    assert await cluster.conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", login, cluster.role)

    await provider.revoke(target, ref)
    assert not await cluster.conn.fetchval(
        "SELECT pg_has_role($1, $2, 'MEMBER')", login, cluster.role
    )


@pytest.mark.postgres
async def test_full_email_logins_are_quoted(cluster: Cluster) -> None:
    provider = cluster.provider("{email}")
    email = f"pimbot_t_{cluster.tag}.Bob@Example.com"
    target = make_target(email, {"role": cluster.role})
    await provider.grant(target)
    assert await cluster.role_row(email.lower()) is not None
    assert await provider.check(target) is True
    await provider.revoke(target, None)
    assert await provider.check(target) is False


@pytest.mark.postgres
async def test_revoke_without_a_login_role_is_success(cluster: Cluster) -> None:
    provider = cluster.provider(f"pimbot_t_{cluster.tag}_{{email_local}}")
    target = make_target("nobody@example.com", {"role": cluster.role})
    before = await cluster.count_roles()
    await provider.revoke(target, None)
    assert await provider.check(target) is False
    assert await cluster.count_roles() == before


@pytest.mark.postgres
async def test_granting_a_missing_role_fails_clearly(cluster: Cluster) -> None:
    provider = cluster.provider(f"pimbot_t_{cluster.tag}_{{email_local}}")
    target = make_target("bob@example.com", {"role": f"pimbot_t_missing_{cluster.tag}"})
    with pytest.raises(ProviderError, match="does not exist"):
        await provider.grant(target)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "role",
    ['app_admin"; DROP ROLE postgres; --', "app admin", "", "x" * 64, None, ["app_admin"]],
)
async def test_unsafe_role_names_are_refused_before_any_sql(cluster: Cluster, role: Any) -> None:
    provider = cluster.provider(f"pimbot_t_{cluster.tag}_{{email_local}}")
    before = await cluster.count_roles()
    with pytest.raises(ProviderError, match=r"grant\.role") as raised:
        await provider.grant(make_target("bob@example.com", {"role": role}))
    assert raised.value.retryable is False
    assert await cluster.count_roles() == before


@pytest.mark.postgres
async def test_unsafe_logins_are_refused(cluster: Cluster) -> None:
    provider = cluster.provider("{email}")
    target = make_target('bob"; DROP ROLE postgres; --@example.com', {"role": cluster.role})
    with pytest.raises(ProviderError, match="not a usable login name"):
        await provider.grant(target)
    reserved = cluster.provider("pg_{email_local}")
    with pytest.raises(ProviderError, match="not a usable login name"):
        await reserved.grant(make_target("bob@example.com", {"role": cluster.role}))


async def test_unreachable_server_is_a_provider_error_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dsn = f"postgresql://pimbot:hunter2@127.0.0.1:{port}/prod"
    config = ProviderConfig("proddb", "postgres", {"dsn": dsn, "timeout": 2})
    provider = build_providers({"proddb": config}, {})["proddb"]
    with pytest.raises(ProviderError, match="could not connect") as raised:
        await provider.check(make_target())
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("template", "email", "login"),
    [
        ("{email_local}", "Alice.Smith@example.com", "alice_smith"),
        ("{email_local}", "o'brien-x+y@example.com", "o_brien_x_y"),
        ("pim_{email_local}", "bob@example.com", "pim_bob"),
        ("{email}", "Bob@Example.COM", "bob@example.com"),
    ],
)
def test_login_names_follow_the_template(template: str, email: str, login: str) -> None:
    assert login_for(template, email) == login


@pytest.mark.postgres
async def test_a_superuser_or_pimbots_own_login_is_never_granted_to(cluster: Cluster) -> None:
    provider = cluster.provider("{email_local}")  # postgres@… would map onto the superuser
    target = make_target("postgres@anything.example", {"role": cluster.role})
    with pytest.raises(ProviderError) as refused:
        await provider.grant(target)
    assert not refused.value.retryable
    assert "superuser" in str(refused.value)
    assert not await cluster.conn.fetchval(
        "SELECT pg_has_role('postgres', $1, 'MEMBER') AND EXISTS (SELECT 1 FROM pg_auth_members m"
        " JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
        " WHERE r.rolname = $1 AND u.rolname = 'postgres')", cluster.role)
