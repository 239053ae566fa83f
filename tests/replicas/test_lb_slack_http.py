"""Slack over HTTP with two ``pimbot run`` replicas behind a round-robin load balancer.

What a user would notice: a request made through one replica is approved by a click landing
on the other; every approver's copy of the card is redrawn once per change, whichever
replica redraws it; the grant is made once and the expiry revokes once. Slack's retries of an
event and a replay of signed bytes that land on the other replica are acked and do nothing
(the replay guard is the database's, shared by every replica).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fake_slack import ALICE, BOB, CAROL, FakeSlack
from lb_cluster import Cluster, cluster, slack_settings, until, until_async
from slack_driver import FORM, SlackDriver, dm_of
from sqlalchemy import func, select
from webhook_receiver import WebhookReceiver

from pimbot.store.tables import JobRow

pytestmark = pytest.mark.postgres




@pytest.fixture
async def two(tmp_path: Path, empty_pg: str, receiver: WebhookReceiver,
              fake_slack: FakeSlack) -> AsyncIterator[tuple[Cluster, SlackDriver]]:
    async with cluster(tmp_path, empty_pg, receiver, 2, slack_settings(fake_slack)) as replicas, \
            aiohttp.ClientSession(base_url=replicas.balancer.url) as http:
        yield replicas, SlackDriver(http, fake_slack)  # type: ignore[arg-type]


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions"
            for e in b["elements"]}


def updates_of(fake: FakeSlack, channel: str, ts: str) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("chat.update")
            if c.args.get("channel") == channel and c.args.get("ts") == ts]


async def done_refreshes(replicas: Cluster) -> int:
    async with replicas.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(JobRow).where(
            JobRow.kind == "refresh_cards", JobRow.status == "done")) or 0)


async def test_made_on_one_replica_approved_on_the_other_granted_and_revoked_once(
        two: tuple[Cluster, SlackDriver], fake_slack: FakeSlack) -> None:
    replicas, driver = two
    replicas.balancer.next_to(0)
    response, asked = await driver.slash(BOB[0], "activate prod-db-admin for 20s reason restore")
    assert response.status == 200
    assert replicas.balancer.served[-1].backend == 0
    await until(lambda: fake_slack.posts_to(ALICE[0]) and fake_slack.posts_to(CAROL[0])
                and fake_slack.responses(asked), "both approvers' cards", cluster=replicas)
    copies = {who: fake_slack.posts_to(who)[0] for who in (ALICE[0], CAROL[0])}
    request_id = buttons(copies[ALICE[0]].args["blocks"])["pim_approve"]

    response, click = await driver.click(ALICE[0], "pim_approve", request_id)
    assert response.status == 200
    assert replicas.balancer.served[-1].backend == 1, "the click landed on the other replica"
    await until(lambda: replicas.hooks("grant"), "the grant", cluster=replicas)

    def decided_everywhere() -> bool:
        return all(any(not buttons(u["blocks"]) for u in
                       updates_of(fake_slack, dm_of(who), post.answer["ts"]))
                   for who, post in copies.items())

    await until(decided_everywhere, "every copy redrawn without its buttons", cluster=replicas)
    await until(lambda: replicas.hooks("revoke"), "the expiry's revoke", cluster=replicas)
    await until_async(lambda: _state_is(replicas, request_id, "expired"), "expired", replicas)
    await until_async(lambda: _revoked_audited(replicas), "the revoke's audit event", replicas)
    await until(lambda: fake_slack.responses(click), "the click's answer", cluster=replicas)

    async def redrawn_per_refresh() -> bool:
        refreshes = await done_refreshes(replicas)
        return refreshes > 0 and all(
            len(updates_of(fake_slack, dm_of(who), post.answer["ts"])) == refreshes
            for who, post in copies.items())

    # Each redraw job ran on one replica and updated each copy once (two replicas running
    # the same job would update a copy twice as often as there were jobs).
    await until_async(redrawn_per_refresh, "one update of each copy per redraw", replicas)
    assert [len(fake_slack.posts_to(who)) for who in copies] == [1, 1], "one card each"
    assert [d.activation_id for d in replicas.hooks("grant")] == [request_id]
    [revoke] = replicas.hooks("revoke")
    assert revoke.activation_id == request_id
    sent, ends = (datetime.fromisoformat(revoke.body[k]) for k in ("sent_at", "expires_at"))
    assert sent >= ends, "revoked no earlier than the expiry"
    assert len(await replicas.audit("grant.revoked")) == 1, "recorded once"
    assert len(fake_slack.responses(asked)) == 1 and len(fake_slack.responses(click)) == 1
    await replicas.verify_chain()


async def _revoked_audited(replicas: Cluster) -> bool:
    return bool(await replicas.audit("grant.revoked"))


async def _state_is(replicas: Cluster, request_id: str, state: str) -> bool:
    return any(r.id == request_id and r.state == state for r in await replicas.requests())


async def test_retries_and_replays_on_the_other_replica_are_taken_once(
        two: tuple[Cluster, SlackDriver], fake_slack: FakeSlack) -> None:
    replicas, driver = two
    replicas.balancer.next_to(0)
    response = await driver.home_opened(BOB[0], "Ev0LB00001")
    assert response.status == 200
    await until(lambda: fake_slack.calls_to("views.publish"), "the App Home", cluster=replicas)
    response = await driver.home_opened(BOB[0], "Ev0LB00001", retry=1)  # Slack's retry
    assert response.status == 200
    assert [s.backend for s in replicas.balancer.served] == [0, 1]

    name = driver.next_name()
    body = driver.slash_body(BOB[0], "activate prod-db-admin for 1h reason restore", name)
    sent_at = int(time.time())
    first = await driver.post(body, FORM, timestamp=sent_at)
    replayed = await driver.post(body, FORM, timestamp=sent_at)  # the same signed bytes
    assert (first.status, replayed.status) == (200, 200)
    assert [s.backend for s in replicas.balancer.served[2:]] == [0, 1]

    async def replays_recorded() -> bool:
        return len(await replicas.audit("inbound.replayed")) == 2

    await until_async(replays_recorded, "both replays refused and audited", replicas)
    await until(lambda: fake_slack.posts_to(ALICE[0]) and fake_slack.responses(name),
                "the request's approval card and answer", cluster=replicas)
    kinds = sorted(e.subject for e in await replicas.audit("inbound.replayed"))
    assert kinds == ["command", "event"]
    assert len(await replicas.requests()) == 1, "the replayed command filed nothing"
    assert len(fake_slack.calls_to("views.publish")) == 1, "the retried event did nothing"
    assert len(fake_slack.responses(name)) == 1
    assert len(fake_slack.posts_to(ALICE[0])) == 1
