"""The webhook provider speaks exactly the wire format in DESIGN.md."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import aiohttp
import pytest

from pimbot.domain.model import ProviderConfig
from pimbot.ports import GrantTarget, Provider
from pimbot.providers import ProviderConfigError, ProviderError, build_providers
from pimbot.testing.fakes import FakeClock
from providers_support import WEBHOOK_SECRET, FakeReceiver, fake_receiver, make_target

NOW = datetime(2026, 11, 2, 9, 0, 5, tzinfo=UTC)
ENV = {"PIM_HOOK_SECRET": WEBHOOK_SECRET}


@pytest.fixture
async def receiver() -> AsyncIterator[FakeReceiver]:
    async with fake_receiver() as running:
        yield running


def webhook(receiver: FakeReceiver, **settings: object) -> Provider:
    config = ProviderConfig(
        "hooks", "webhook", {"url": receiver.url, "secret_env": "PIM_HOOK_SECRET", **settings}
    )
    return build_providers({"hooks": config}, ENV, clock=FakeClock(NOW))["hooks"]


async def test_body_has_exactly_the_contract_fields(receiver: FakeReceiver) -> None:
    provider = webhook(receiver)
    target = make_target(grant={"role": "app_admin", "schema": "billing"})
    await provider.grant(target)
    await provider.close()

    [sent] = receiver.requests
    assert sent.body == {
        "action": "grant",
        "user": "bob@example.com",
        "role": "prod-db-admin",
        "grant": {"role": "app_admin", "schema": "billing"},
        "activation_id": target.activation_id,
        "starts_at": "2026-11-02T09:00:00Z",
        "expires_at": "2026-11-02T10:00:00Z",
        "sent_at": "2026-11-02T09:00:05Z",
    }
    for key in ("starts_at", "expires_at", "sent_at"):
        assert datetime.fromisoformat(sent.body[key]).utcoffset() is not None
    assert sent.headers["Content-Type"] == "application/json"


async def test_open_ended_grant_sends_null_expiry(receiver: FakeReceiver) -> None:
    provider = webhook(receiver)
    target = make_target()
    open_ended = GrantTarget(
        target.activation_id, target.email, target.role, target.grant, target.starts_at, None
    )
    await provider.grant(open_ended)
    await provider.close()
    assert receiver.requests[0].body["expires_at"] is None


async def test_signature_verifies_with_the_shared_secret(receiver: FakeReceiver) -> None:
    provider = webhook(receiver)
    await provider.grant(make_target())
    await provider.close()

    [sent] = receiver.requests
    digest = hmac.new(WEBHOOK_SECRET.encode(), sent.raw, hashlib.sha256).hexdigest()
    assert sent.headers["X-Pimbot-Signature"] == f"sha256={digest}"
    assert WEBHOOK_SECRET not in sent.raw.decode()
    assert all(WEBHOOK_SECRET not in value for value in sent.headers.values())


async def test_a_wrong_secret_is_refused_by_the_receiver(receiver: FakeReceiver) -> None:
    config = ProviderConfig("hooks", "webhook", {"url": receiver.url, "secret_env": "OTHER"})
    provider = build_providers({"hooks": config}, {"OTHER": "not-the-secret"})["hooks"]
    with pytest.raises(ProviderError, match="HTTP 401"):
        await provider.grant(make_target())
    await provider.close()


async def test_idempotency_key_names_the_activation_and_action(receiver: FakeReceiver) -> None:
    provider = webhook(receiver)
    target = make_target()
    await provider.grant(target)
    await provider.check(target)
    await provider.revoke(target, None)
    await provider.close()

    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    aid = target.activation_id
    assert keys == [f"{aid}:grant", f"{aid}:check", f"{aid}:revoke"]
    assert [r.body["action"] for r in receiver.requests] == ["grant", "check", "revoke"]


async def test_server_error_raises_provider_error(receiver: FakeReceiver) -> None:
    receiver.status = 500
    provider = webhook(receiver)
    with pytest.raises(ProviderError, match=r"grant .* answered HTTP 500") as raised:
        await provider.grant(make_target())
    assert WEBHOOK_SECRET not in str(raised.value)
    await provider.close()


async def test_redirect_is_not_success(receiver: FakeReceiver) -> None:
    receiver.status = 302
    provider = webhook(receiver)
    with pytest.raises(ProviderError, match="HTTP 302"):
        await provider.revoke(make_target(), None)
    await provider.close()


async def test_any_2xx_is_success(receiver: FakeReceiver) -> None:
    provider = webhook(receiver)
    target = make_target()
    receiver.status = 202
    assert await provider.grant(target) is None
    receiver.status = 204
    await provider.revoke(target, None)
    await provider.close()
    assert len(receiver.requests) == 2


async def test_timeout_raises_provider_error(receiver: FakeReceiver) -> None:
    receiver.hang = asyncio.Event()
    provider = webhook(receiver, timeout=0.2)
    with pytest.raises(ProviderError, match=r"timed out after 0\.2s"):
        await provider.grant(make_target())
    await provider.close()


async def test_unreachable_receiver_raises_provider_error() -> None:
    async with fake_receiver() as stopped:
        url = stopped.url
    config = ProviderConfig("hooks", "webhook", {"url": url, "secret_env": "PIM_HOOK_SECRET"})
    provider = build_providers({"hooks": config}, ENV)["hooks"]
    with pytest.raises(ProviderError, match="failed: Client"):
        await provider.check(make_target())
    await provider.close()


@pytest.mark.parametrize("answer", [b"not json", b'{"active": "yes"}', b"[]", b"{}"])
async def test_check_needs_an_active_boolean(receiver: FakeReceiver, answer: bytes) -> None:
    receiver.check_answer = answer
    provider = webhook(receiver)
    with pytest.raises(ProviderError, match="check"):
        await provider.check(make_target())
    await provider.close()


async def test_a_shared_session_is_used_and_left_open(receiver: FakeReceiver) -> None:
    async with aiohttp.ClientSession() as http:
        config = ProviderConfig(
            "hooks", "webhook", {"url": receiver.url, "secret_env": "PIM_HOOK_SECRET"}
        )
        provider = build_providers({"hooks": config}, ENV, http=http)["hooks"]
        await provider.grant(make_target())
        await provider.close()
        assert not http.closed
    assert len(receiver.requests) == 1


def test_missing_secret_env_var_fails_at_build_time() -> None:
    config = ProviderConfig(
        "hooks", "webhook", {"url": "https://iam.example.com/pim", "secret_env": "PIM_HOOK_SECRET"}
    )
    with pytest.raises(ProviderConfigError) as raised:
        build_providers({"hooks": config}, {})
    assert raised.value.path == "providers.hooks.secret_env"
    assert "PIM_HOOK_SECRET is not set" in str(raised.value)


async def test_yaml_dates_in_grant_parameters_are_sent_as_text(receiver: FakeReceiver) -> None:
    provider = webhook(receiver)
    await provider.grant(make_target(grant={"group": "dba", "until": date(2027, 3, 31)}))
    await provider.close()
    assert receiver.requests[0].body["grant"] == {"group": "dba", "until": "2027-03-31"}
