"""Where the local PostgreSQL for tests is (a failure, not a skip, under CI=true)."""

from __future__ import annotations

import os

import pytest


def postgres_url() -> str | None:
    """The admin URL of the local PostgreSQL, or None (a failure under CI=true)."""
    url = os.environ.get("PIMBOT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("PIMBOT_TEST_POSTGRES_URL is not set under CI=true")
        pytest.skip("PIMBOT_TEST_POSTGRES_URL is not set (PostgreSQL tests skipped locally)")
    return url
