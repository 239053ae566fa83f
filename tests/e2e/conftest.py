"""End-to-end fixtures: a local webhook receiver and a policy whose provider points at it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hook_policy import hook_policy_env
from webhook_receiver import WebhookReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver(secrets.token_urlsafe(24))
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
def hook_env(tmp_path: Path, receiver: WebhookReceiver) -> dict[str, str]:
    return hook_policy_env(tmp_path, receiver)
