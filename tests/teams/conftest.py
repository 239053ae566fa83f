"""Fixtures for the Teams adapter tests: a running fake Bot Framework."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_connector import FakeBotFramework
from teams_driver import PEOPLE


@pytest.fixture
async def fake_teams() -> AsyncIterator[FakeBotFramework]:
    fake = FakeBotFramework([p.member for p in PEOPLE])
    await fake.start()
    yield fake
    await fake.close()
