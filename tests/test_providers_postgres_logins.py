"""Whose login is whose: a postgres grant reaches one person, never someone else as well.

Against the real local PostgreSQL. Every role a test makes is named ``pimbot_t_TAG_…`` and
dropped afterwards; the provider's template is ``pimbot_t_TAG_{email_local}`` so tests running
side by side never meet.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from pimbot.domain.model import ProviderConfig
from pimbot.ports import GrantTarget, Provider
from pimbot.providers import ProviderError, build_providers
from postgres_support import postgres_url
from providers_support import make_target

pytestmark = pytest.mark.postgres

_MEMBER = """
SELECT EXISTS (SELECT 1 FROM pg_auth_members m
  JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
  WHERE r.rolname = $1 AND u.rolname = $2)
"""


@dataclass
class Lab:
    dsn: str
    conn: Any
    tag: str
    role: str  # the role the policy grants

    def login(self, local: str) -> str:
        return f"pimbot_t_{self.tag}_{local}"

    def provider(self, logins: dict[str, str] | None = None, template: str = "") -> Provider:
        settings: dict[str, Any] = {
            "dsn": self.dsn,
            "login": template or f"pimbot_t_{self.tag}_{{email_local}}",
        }
        if logins is not None:
            settings["logins"] = logins
        config = ProviderConfig("proddb", "postgres", settings)
        return build_providers({"proddb": config}, {})["proddb"]

    def target(self, email: str, role: str | None = None) -> GrantTarget:
        return make_target(email, {"role": role or self.role})

    async def is_member(self, login: str, role: str | None = None) -> bool:
        return bool(await self.conn.fetchval(_MEMBER, role or self.role, login))

    async def owner_note(self, login: str) -> str | None:
        return await self.conn.fetchval(  # type: ignore[no-any-return]
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", login
        )


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    admin = postgres_url()
    assert admin is not None
    dsn = admin.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    tag = secrets.token_hex(4)
    made = Lab(dsn, conn, tag, f"pimbot_t_{tag}_app_admin")
    await conn.execute(f'CREATE ROLE "{made.role}" NOLOGIN')
    try:
        yield made
    finally:
        names = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"pimbot\\_t\\_{tag}\\_%"
        )
        for row in names:
            await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
        await conn.close()


async def test_two_people_who_map_to_one_login_never_share_it(lab: Lab) -> None:
    provider = lab.provider()
    first = lab.target("bob.smith@example.com")
    ref = await provider.grant(first)
    login = lab.login("bob_smith")
    assert ref is not None and json.loads(ref)["login"] == login
    assert "bob.smith@example.com" in (await lab.owner_note(login) or "")

    for other in ("bob-smith@example.com", "Bob+Smith@other.example"):
        with pytest.raises(ProviderError) as refused:
            await provider.grant(lab.target(other))
        assert refused.value.retryable is False
        assert f"login {login} belongs to another person" in refused.value.message
        assert other.lower() in refused.value.message  # who needs a login of their own
        assert await provider.check(lab.target(other)) is False
        await provider.revoke(lab.target(other), None)  # the clean-up after a failed grant

    assert await lab.is_member(login)  # the first person's grant is untouched
    assert await provider.check(first) is True


async def test_concurrent_grants_for_two_people_to_one_new_login_give_it_to_one(lab: Lab) -> None:
    provider = lab.provider()
    results = await asyncio.gather(
        provider.grant(lab.target("dana.lee@example.com")),
        provider.grant(lab.target("dana-lee@example.com")),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, ProviderError)]
    assert len(refused) == 1, results
    assert "belongs to another person" in refused[0].message
    assert await lab.is_member(lab.login("dana_lee"))


async def test_a_login_pimbot_did_not_create_is_not_taken_over(lab: Lab) -> None:
    service = lab.login("svc")
    await lab.conn.execute(f'CREATE ROLE "{service}" LOGIN')  # an application's own login
    with pytest.raises(ProviderError, match="was not created by pimbot") as refused:
        await lab.provider().grant(lab.target("svc@example.com"))
    assert refused.value.retryable is False
    assert not await lab.is_member(service)


@pytest.mark.parametrize(
    ("attributes", "with_member", "reason"),
    [
        ("NOLOGIN", False, "cannot log in"),
        ("SUPERUSER LOGIN", False, "is a superuser"),
        ("LOGIN", True, "has members"),
    ],
)
async def test_an_unsafe_login_is_refused_even_when_the_policy_names_it(
    lab: Lab, attributes: str, with_member: bool, reason: str
) -> None:
    login = lab.login("team")
    await lab.conn.execute(f'CREATE ROLE "{login}" {attributes}')
    member = lab.login("member")
    if with_member:  # a group role: whoever is in it would inherit the grant
        await lab.conn.execute(f'CREATE ROLE "{member}" LOGIN')
        await lab.conn.execute(f'GRANT "{login}" TO "{member}"')
    provider = lab.provider(logins={"team@example.com": login})
    with pytest.raises(ProviderError, match=reason) as refused:
        await provider.grant(lab.target("team@example.com"))
    assert refused.value.retryable is False
    assert not await lab.is_member(login)
    if with_member:
        assert not await lab.conn.fetchval("SELECT pg_has_role($1, $2, 'USAGE')", member, lab.role)


async def test_a_login_that_gained_members_since_its_last_grant_is_refused(lab: Lab) -> None:
    provider, target = lab.provider(), lab.target("gina@example.com")
    ref = await provider.grant(target)
    await provider.revoke(target, ref)
    login, member = lab.login("gina"), lab.login("intern")
    await lab.conn.execute(f'CREATE ROLE "{member}" LOGIN')
    await lab.conn.execute(f'GRANT "{login}" TO "{member}"')  # her login became a group
    with pytest.raises(ProviderError, match="has members"):
        await provider.grant(target)
    assert not await lab.conn.fetchval("SELECT pg_has_role($1, $2, 'USAGE')", member, lab.role)


async def test_pimbots_own_user_as_a_member_is_not_someone_else(lab: Lab) -> None:
    """PostgreSQL 16 makes a CREATEROLE user a member of every role it creates."""
    provider, target = lab.provider(), lab.target("hana@example.com")
    ref = await provider.grant(target)
    await provider.revoke(target, ref)
    await lab.conn.execute(f'GRANT "{lab.login("hana")}" TO current_user')
    await provider.grant(target)
    assert await lab.is_member(lab.login("hana"))


async def test_the_login_override_is_used_and_adopts_a_login_a_dba_made(lab: Lab) -> None:
    own = lab.login("bsmith")
    kept = lab.login("carol")
    await lab.conn.execute(f'CREATE ROLE "{kept}" LOGIN')  # made by a DBA, before pimbot
    provider = lab.provider(logins={"bob.smith@example.com": own, "carol@example.com": kept})

    ref = await provider.grant(lab.target("Bob.Smith@example.com"))
    assert ref is not None and json.loads(ref) == {"login": own, "role": lab.role}
    assert await lab.is_member(own)
    await provider.grant(lab.target("bob-smith@example.com"))  # the template's login: no clash
    assert await lab.is_member(lab.login("bob_smith"))
    assert await provider.check(lab.target("bob.smith@example.com")) is True

    await provider.grant(lab.target("carol@example.com"))
    assert await lab.is_member(kept)
    assert "carol@example.com" in (await lab.owner_note(kept) or "")


async def test_a_login_the_policy_gives_to_someone_else_is_refused(lab: Lab) -> None:
    login = lab.login("bob_smith")
    provider = lab.provider(logins={"bob.smith@example.com": login})
    with pytest.raises(ProviderError, match="given to another person") as refused:
        await provider.grant(lab.target("bob-smith@example.com"))  # whose template gives it
    assert refused.value.retryable is False
    assert await lab.conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", login) == 0


async def test_revoke_undoes_what_the_ref_recorded_not_what_the_policy_says_now(lab: Lab) -> None:
    target = lab.target("erin@example.com")
    ref = await lab.provider().grant(target)
    login = lab.login("erin")
    assert await lab.is_member(login)

    other_role = lab.login("other_role")
    await lab.conn.execute(f'CREATE ROLE "{other_role}" NOLOGIN')
    changed = lab.provider(template="renamed_{email_local}")  # the template changed since
    await changed.revoke(lab.target("erin@example.com", role=other_role), ref)
    assert not await lab.is_member(login)


async def test_a_ref_from_before_the_json_format_is_still_revoked(lab: Lab) -> None:
    target = lab.target("frank@example.com")
    provider = lab.provider()
    await provider.grant(target)
    login = lab.login("frank")
    await lab.provider(template="renamed_{email_local}").revoke(target, login)  # a bare login
    assert not await lab.is_member(login)
