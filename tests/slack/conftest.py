"""Fixtures for the Slack adapter tests: a running fake Slack Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_slack import ALICE, BOB, CAROL, NOMAIL, FakeSlack


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack({uid: (email, name) for uid, email, name in (ALICE, BOB, CAROL, NOMAIL)})
    await fake.start()
    yield fake
    await fake.close()
