"""Every provider honours one contract: grant → active → grant again → revoke → not → again."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from microsoft_support import build_microsoft, grant_for, people
from msfake import microsoft_cloud
from pimbot.domain.model import ProviderConfig
from pimbot.ports import GrantTarget, Provider
from pimbot.providers import build_providers
from pimbot.providers.holders import HolderListing
from pimbot.testing.fakes import FakeClock
from postgres_support import postgres_url
from providers_support import (
    WEBHOOK_SECRET,
    command_argv,
    fake_receiver,
    make_target,
)


@dataclass
class Subject:
    provider: Provider
    target: GrantTarget


def _build(config: ProviderConfig, env: dict[str, str] | None = None) -> Provider:
    providers = build_providers({config.name: config}, env or {}, clock=FakeClock())
    return providers[config.name]


MICROSOFT = [f"{kind}:{mode}" for kind in ("entra-group", "entra-role", "azure-rbac")
             for mode in ("direct", "pim")]


@pytest.fixture(
    params=["noop", "webhook", "command", pytest.param("postgres", marks=pytest.mark.postgres),
            *MICROSOFT]
)
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    kind = request.param
    if kind in MICROSOFT:
        async for subject in _microsoft_subject(tmp_path, *kind.split(":")):
            yield subject
    elif kind == "noop":
        provider = _build(ProviderConfig("sandbox", "noop"))
        yield Subject(provider, make_target())
    elif kind == "webhook":
        async with fake_receiver() as receiver:
            config = ProviderConfig(
                "hooks", "webhook", {"url": receiver.url, "secret_env": "PIM_HOOK_SECRET"}
            )
            provider = _build(config, {"PIM_HOOK_SECRET": WEBHOOK_SECRET})
            yield Subject(provider, make_target())
            await provider.close()
    elif kind == "command":
        argv = command_argv(tmp_path)
        config = ProviderConfig("script", "command", {"grant": argv, "revoke": argv, "check": argv})
        yield Subject(_build(config), make_target())
    else:
        async for subject in _postgres_subject():
            yield subject


async def _microsoft_subject(tmp_path: Path, kind: str, mode: str) -> AsyncIterator[Subject]:
    """Against the local fake of Graph, ARM and the token endpoint (tests/msfake)."""
    async with microsoft_cloud(tmp_path) as cloud:
        people(cloud)
        provider = build_microsoft(cloud, kind, mode=mode)
        yield Subject(provider, make_target(grant=grant_for(cloud, kind)))
        await provider.close()


async def _postgres_subject() -> AsyncIterator[Subject]:
    admin = postgres_url()
    assert admin is not None
    dsn = admin.replace("postgresql+asyncpg://", "postgresql://")
    tag = secrets.token_hex(4)
    role, login = f"pimbot_t_app_admin_{tag}", f"pimbot_t_login_{tag}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
    try:
        config = ProviderConfig("proddb", "postgres", {"dsn": admin, "login": "{email_local}"})
        target = make_target(f"{login}@example.com", {"role": role})
        yield Subject(_build(config), target)
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{login}"')
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()


async def test_grant_check_revoke_are_idempotent(subject: Subject) -> None:
    provider, target = subject.provider, subject.target
    assert await provider.check(target) is False

    ref = await provider.grant(target)
    assert await provider.check(target) is True
    await provider.grant(target)  # a retried job grants twice
    assert await provider.check(target) is True

    await provider.revoke(target, ref)
    assert await provider.check(target) is False
    await provider.revoke(target, ref)  # a retried revoke is still success
    assert await provider.check(target) is False
    await provider.close()


async def test_grants_are_per_person(subject: Subject) -> None:
    provider, target = subject.provider, subject.target
    await provider.grant(target)
    other = make_target("someone.else@example.com", target.grant)
    assert await provider.check(other) is False
    await provider.revoke(other, None)  # revoking someone who holds nothing is fine
    assert await provider.check(target) is True
    await provider.revoke(target, None)
    await provider.close()


async def test_providers_that_list_holders_list_what_they_grant(subject: Subject) -> None:
    """Drift compares listings with grant records: a grant shows up as a holder the record's
    ref identifies, and is gone after the revoke; providers that cannot list are skipped."""
    provider, target = subject.provider, subject.target
    if not isinstance(provider, HolderListing):
        await provider.close()
        pytest.skip("this provider cannot list its holders (drift asks check instead)")
    assert await provider.holders(target.grant) == []
    ref = await provider.grant(target)
    [holder] = await provider.holders(target.grant)
    key = provider.holder_key(target, ref)
    assert holder.key == key or target.email in holder.emails, (holder, key)
    await provider.revoke(target, ref)
    assert await provider.holders(target.grant) == []
    await provider.close()
