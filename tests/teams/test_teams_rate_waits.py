"""Teams sends that wait on a rate limit are reported to the core's Telemetry, so
``GET /metrics`` of pimbot's HTTP app shows them: pimbot's own per-conversation pacing and a
429's ``Retry-After``."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer
from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB
from teams_rig import Rig, running

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.scheduling.replicas import Replicas
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.ui.cards import Card
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_server.http import build_http_app
from pimbot_server.metrics import Metrics
from pimbot_teams.limits import ConversationLimiter

WAITS = re.compile(r'^pimbot_outbound_rate_limit_waits_total\{platform="teams"\} (\S+)$', re.M)
SECONDS = re.compile(
    r'^pimbot_outbound_rate_limit_wait_seconds_total\{platform="teams"\} (\S+)$', re.M)


class Frozen:
    """A monotonic clock that moves only when the limiter sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def served(db: Database, fake: FakeBotFramework) -> AsyncIterator[tuple[Rig, TestClient]]:
    """The Teams rig on a core whose Telemetry is the server's Metrics, and /metrics."""
    clock, provider = FakeClock(), RecordingProvider()
    policy = parse_policy(POLICY)
    await apply_policy(db, policy, clock)
    metrics = Metrics(db, clock)
    core = PimCore(db, policy, {"demo": provider}, clock, telemetry=metrics,
                   mfa=MfaService(db, SecretBox(secrets.token_bytes(32)), clock))
    async with running(db, fake, POLICY, core=core, clock=clock, provider=provider) as rig:
        client = TestClient(TestServer(build_http_app(core, metrics=metrics)))
        await client.start_server()
        try:
            yield rig, client
        finally:
            await client.close()


async def figures(client: TestClient) -> tuple[float, float]:
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    waits, seconds = WAITS.search(text), SECONDS.search(text)
    return (float(waits.group(1)) if waits else 0.0, float(seconds.group(1)) if seconds else 0.0)


async def test_a_429_retry_after_is_shown_in_metrics(db: Database,
                                                     fake_teams: FakeBotFramework) -> None:
    async with served(db, fake_teams) as (rig, client):
        await rig.introduce(ALICE)
        assert await figures(client) == (0.0, 0.0)
        fake_teams.fail(f"/conversations/{ALICE.chat}/activities", 429,
                        headers={"Retry-After": "0.05"})
        await rig.adapter.gateway.send_to_user(ALICE.email, Card(title="Hello"))
        waits, seconds = await figures(client)
        assert (waits, seconds) == (1.0, 0.05), "one wait, of Retry-After seconds"
        assert rig.fake.cards_in(ALICE.chat), "sent after the wait"


async def test_waiting_on_the_per_conversation_limit_is_shown_in_metrics(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with served(db, fake_teams) as (rig, client):
        await rig.introduce(BOB)
        frozen = Frozen()
        rig.adapter.connector.limiter = ConversationLimiter(
            ((1.0, 2),), clock=frozen, sleep=frozen.sleep)  # 2 a second, on a frozen clock
        for n in range(3):
            await rig.adapter.gateway.send_to_user(BOB.email, Card(title=f"Notice {n}"))
        waits, seconds = await figures(client)
        assert waits == 1.0 and seconds == 1.0, "the third send waited out the window"
        assert len(rig.fake.cards_in(BOB.chat)) == 3


async def test_with_a_second_replica_alive_each_paces_to_half_the_limit(
        db: Database, fake_teams: FakeBotFramework) -> None:
    """Teams' 7 sends a second to one conversation are shared: with two replicas alive,
    this one's fourth send in a second waits (as the rows in the replicas table say)."""
    other = Replicas(db, "replica-elsewhere", beat=3600)
    other.pidspace = "another-host"
    await other.join()
    try:
        async with served(db, fake_teams) as (rig, client):
            await rig.introduce(BOB)
            await rig.core.replicas.reap()  # this replica's look at the table: two alive
            before, _ = await figures(client)
            for n in range(4):
                await rig.adapter.gateway.send_to_user(BOB.email, Card(title=f"Notice {n}"))
            waits, _ = await figures(client)
    finally:
        await other.leave()
    assert waits - before >= 1, "the fourth send in a second waited for its part of the limit"
