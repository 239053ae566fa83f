"""The scenario suite runs once per chat platform, each on a fresh SQLite database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

# The Slack driver reuses the Slack adapter tests' fake Slack Web API and signed requests.
SLACK_TESTS = str(Path(__file__).resolve().parents[1] / "slack")
if SLACK_TESTS not in sys.path:
    sys.path.insert(0, SLACK_TESTS)

from console_scenario import console_driver  # noqa: E402
from scenario_driver import POLICY, Driver  # noqa: E402
from slack_scenario import slack_driver  # noqa: E402
from teams_scenario import teams_driver  # noqa: E402

from pimbot.store.database import Database  # noqa: E402

DRIVERS = {"console": console_driver, "slack": slack_driver, "teams": teams_driver}


@pytest.fixture(params=sorted(DRIVERS))
async def driver(request: pytest.FixtureRequest, sqlite_db: Database) -> AsyncIterator[Driver]:
    start = DRIVERS[request.param]
    running: AbstractAsyncContextManager[Driver] = start(sqlite_db, POLICY)
    async with running as value:
        yield value
