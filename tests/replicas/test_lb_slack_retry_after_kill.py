"""Slack's retry of a request whose replica was killed mid-turn, on three ``pimbot run``
replicas (real processes, one PostgreSQL database).

What a user would notice: Bob opens pimbot's App Home; the replica that took the event is
SIGKILLed while it is still publishing the view. Slack's retry is acted on (Bob gets his
Home) instead of being taken for a replay and lost; and when the retry reaches the two
surviving replicas at the same instant, exactly one of them acts. A retry that arrives while
the first replica is still alive and working is a replay: it does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fake_slack import BOB, FakeSlack
from lb_cluster import Cluster, cluster, slack_settings, until, until_async
from slack_driver import SlackDriver
from sqlalchemy import func, select
from webhook_receiver import WebhookReceiver

from pimbot.store.tables import ReplicaRow

pytestmark = pytest.mark.postgres
EVENT = "Ev0KILL0001"


@pytest.fixture
async def three(tmp_path: Path, empty_pg: str, receiver: WebhookReceiver,
                fake_slack: FakeSlack) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, empty_pg, receiver, 3, slack_settings(fake_slack)) as replicas:
        yield replicas


async def _replicas_alive(replicas: Cluster) -> int:
    async with replicas.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(ReplicaRow)) or 0)


async def test_a_retry_of_a_request_its_killed_replica_never_finished_is_acted_on_once(
        three: Cluster, fake_slack: FakeSlack) -> None:
    replicas = three
    gate = fake_slack.hold("views.publish")
    sessions = [aiohttp.ClientSession(base_url=r.url) for r in replicas.replicas]
    try:
        drivers = [SlackDriver(s, fake_slack) for s in sessions]  # type: ignore[arg-type]
        first = await drivers[0].home_opened(BOB[0], EVENT)
        assert first.status == 200
        await until(lambda: any(c.method == "views.publish" for c in fake_slack.calls),
                    "replica 0 publishing (held)", cluster=replicas)

        # While replica 0 is alive and at work, a retry elsewhere is a replay.
        early = await drivers[1].home_opened(BOB[0], EVENT, retry=1)
        assert early.status == 200
        await until_async(lambda: _audited(replicas, "inbound.replayed", 1), "the replay",
                          replicas)

        replicas.replicas[0].kill()
        await until_async(lambda: _gone(replicas), "replica 0 reaped", replicas)
        gate.set()  # Slack answers again (replica 0's own call answers into the void)

        # Slack's next retry reaches both survivors at once: one acts, the other does not.
        retried = await asyncio.gather(*(d.home_opened(BOB[0], EVENT, retry=2)
                                         for d in drivers[1:]))
        assert [r.status for r in retried] == [200, 200]
        await until(lambda: len(_published(fake_slack)) >= 2, "the retry's App Home",
                    cluster=replicas)
        await until_async(lambda: _audited(replicas, "inbound.replayed", 2), "the loser", replicas)
        assert len(await replicas.audit("inbound.resumed")) == 1, "taken over once"
        assert len(_published(fake_slack)) == 2, "the killed replica's call and one retry"
        await replicas.verify_chain()
    finally:
        for session in sessions:
            await session.close()


def _published(fake: FakeSlack) -> list[object]:
    return [c for c in fake.calls_to("views.publish") if c.args.get("user_id") == BOB[0]]


async def _gone(replicas: Cluster) -> bool:
    return await _replicas_alive(replicas) == 2


async def _audited(replicas: Cluster, action: str, count: int) -> bool:
    return len(await replicas.audit(action)) >= count
