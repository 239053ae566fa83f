"""Slack's Web API out of reach while a signed request comes in (the bot cannot learn its
workspace or the person): Slack is answered 503 with ``Retry-After`` (it retries), never a
500 with a traceback; one clear warning line is logged. Once Slack is back, the same kind
of request works."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_rig import Rig, running

from pimbot.store.database import Database

POLICY = """
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db:
    provider: demo
    require_justification: false
assignments:
  - {user: bob@example.com, role: prod-db, type: eligible}
"""


@pytest.fixture
async def rig(db: Database) -> AsyncIterator[Rig]:
    fake = FakeSlack({uid: (email, name) for uid, email, name in (ALICE, BOB)})
    await fake.start()
    async with running(db, fake, POLICY) as value:
        yield value
    await fake.close()


async def test_a_signed_command_while_slack_is_unreachable_gets_503_with_retry_after(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    port = rig.slack.port
    await rig.slack.close()  # nothing listens on Slack's port any more
    with caplog.at_level(logging.INFO):
        response, _ = await rig.driver.slash(BOB[0], "activate prod-db for 1h")
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Slack" in warnings[0].getMessage(), \
        [r.getMessage() for r in warnings]
    assert await rig.requests() == [], "nothing was acted on"

    await _restart(rig.slack, port)
    response, _ = await rig.driver.slash(BOB[0], "activate prod-db for 1h")
    assert response.status == 200
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["active"]


async def _restart(fake: FakeSlack, port: int) -> None:
    """Slack is back, on the same address."""
    from aiohttp import web

    runner = fake._runner
    assert runner is not None
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
