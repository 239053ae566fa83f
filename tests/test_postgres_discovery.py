"""`make test` finds the local PostgreSQL by itself, and says in one line when there is none."""

from __future__ import annotations

import socket

import pytest

import postgres_support
from postgres_support import ENV, discover, postgres_url


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


@pytest.fixture(autouse=True)
def _keep_session_status() -> object:
    saved = dict(postgres_support._STATUS)
    yield
    postgres_support._STATUS.clear()
    postgres_support._STATUS.update(saved)


def test_a_given_url_is_used_as_it_is() -> None:
    env = {ENV: "postgresql+asyncpg://me:secret@db.example:5433/x"}
    line = discover(env)
    assert "secret" not in line and "from PIMBOT_TEST_POSTGRES_URL" in line
    assert postgres_url(env) == env[ENV]


def test_without_postgres_the_tests_skip_locally_and_say_why_in_one_line() -> None:
    env: dict[str, str] = {}
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/test"
    line = discover(env, local=url)
    assert "\n" not in line and "skipped" in line and "nothing answers" in line
    assert ENV not in env
    with pytest.raises(pytest.skip.Exception):
        postgres_url(env)


def test_without_postgres_under_ci_the_tests_fail() -> None:
    env = {"CI": "true"}
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/test"
    assert "FAIL under CI=true" in discover(env, local=url)
    with pytest.raises(pytest.fail.Exception):
        postgres_url(env)


def test_the_local_default_is_found_when_it_answers() -> None:
    if postgres_support._probe(postgres_support.LOCAL_DEFAULT) is not None:
        pytest.skip("no PostgreSQL on the default local port here")
    env: dict[str, str] = {}
    assert "found on the default local port" in discover(env)
    assert env[ENV] == postgres_support.LOCAL_DEFAULT
