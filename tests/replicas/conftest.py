"""Replicas as real processes: an empty PostgreSQL database each, a webhook receiver, and
(for the load-balanced tests) the Slack and Bot Framework fakes."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _folder in ("e2e", "slack", "teams"):  # the webhook receiver, the Slack and Teams fakes
    if str(_TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(_TESTS / _folder))

from fake_slack import ALICE, BOB, CAROL, FakeSlack  # noqa: E402
from webhook_receiver import WebhookReceiver  # noqa: E402

from postgres_support import postgres_url  # noqa: E402


@pytest.fixture
async def empty_pg() -> AsyncIterator[str]:
    """The URL of a new, empty (not migrated) PostgreSQL database, dropped afterwards."""
    import asyncpg

    admin = postgres_url()
    assert admin is not None
    plain = admin.replace("postgresql+asyncpg://", "postgresql://")
    name = "pimbot_r_" + secrets.token_hex(6)
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver(secrets.token_urlsafe(24))
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """The Slack Web API fake, knowing alice, bob and carol."""
    fake = FakeSlack({uid: (email, name) for uid, email, name in (ALICE, BOB, CAROL)})
    await fake.start()
    yield fake
    await fake.close()
