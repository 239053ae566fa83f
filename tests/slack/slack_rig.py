"""A running pimbot with the Slack adapter: real PimCore, real database, real aiohttp route.

Only Slack itself is faked (``fake_slack.FakeSlack``, at the HTTP level); the provider is a
RecordingProvider, time is a FakeClock, and MFA runs on a real ``MfaService``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_slack import FakeSlack
from slack_driver import SIGNING_SECRET, SlackDriver
from sqlalchemy import select

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import Provider
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_slack.app import SlackAdapter

KEY = re.compile(r"Key: ([A-Z2-7]+)")


@dataclass
class Rig:
    core: PimCore
    adapter: SlackAdapter
    provider: RecordingProvider
    slack: FakeSlack
    driver: SlackDriver
    db: Database
    clock: FakeClock

    async def settle(self) -> None:
        """Let acked requests finish, then run the jobs they enqueued (DMs, grants)."""
        await self.adapter.idle()
        await self.core.drain()

    async def requests(self) -> list[RequestRow]:
        async with self.db.read() as session:
            return list((await session.execute(select(RequestRow))).scalars())

    def reply_to(self, name: str) -> dict[str, Any]:
        answers = self.slack.responses(name)
        assert len(answers) == 1, answers
        return answers[0].args

    def enrolment_post(self, user_id: str) -> str:
        """The latest DM pimbot posted to the person that holds an authenticator key."""
        posts = [str(p.args) for p in self.slack.posts_to(user_id) if KEY.search(str(p.args))]
        assert posts, "no enrolment message was posted"
        return posts[-1]

    def code(self, totp: pyotp.TOTP) -> str:
        """The code the person's authenticator shows at pimbot's (fake) now."""
        return str(totp.at(self.clock.now()))

    async def enrol(self, user_id: str) -> pyotp.TOTP:
        """``/pim mfa enroll`` then ``/pim mfa confirm`` in the person's DM, over HTTP."""
        _, name = await self.driver.slash(user_id, "mfa enroll")
        await self.settle()
        found = KEY.search(self.enrolment_post(user_id))
        assert found, self.reply_to(name)
        totp = pyotp.TOTP(found.group(1))
        _, name = await self.driver.slash(user_id, f"mfa confirm {self.code(totp)}")
        await self.settle()
        assert "confirmed" in self.reply_to(name)["text"], self.reply_to(name)
        self.clock.advance(timedelta(seconds=30))  # the next code is a fresh time step
        return totp


@asynccontextmanager
async def running(db: Database, fake_slack: FakeSlack, policy_text: str,
                  demo: Provider | None = None) -> AsyncIterator[Rig]:
    """``demo`` is the policy's ``demo`` provider (default: the rig's RecordingProvider)."""
    policy = parse_policy(policy_text)
    clock = FakeClock()
    await apply_policy(db, policy, clock)
    provider = RecordingProvider()
    mfa = MfaService(db, SecretBox(secrets.token_bytes(32)), clock)
    core = PimCore(db, policy, {"demo": demo or provider}, clock, mfa=mfa)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PIMBOT_SLACK_API_URL": fake_slack.api_url,
    }
    adapter = SlackAdapter.from_env(env, core)
    app = web.Application()
    adapter.mount(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        driver = SlackDriver(client, fake_slack)
        yield Rig(core, adapter, provider, fake_slack, driver, db, clock)
    finally:
        await adapter.stop()
        await client.close()
