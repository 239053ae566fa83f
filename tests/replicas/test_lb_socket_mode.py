"""Slack Socket Mode with two ``pimbot run`` replicas, each holding its own connection.

Slack delivers each envelope to one of an app's connections and expects one ack: a request
sent on replica 0's socket is approved by a click arriving on replica 1's; when a replica is
killed with an envelope it never acked, Slack delivers it again on the other connection and
the other replica finishes the work (one revoke, the audit chain intact).
"""

from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_slack import ALICE, BOB, CAROL, fixture
from lb_cluster import Cluster, cluster, until, until_async
from slack_driver import dm_of
from socket_fleet import SocketFleet
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.postgres

APP_TOKENS = ("xapp-replica-0", "xapp-replica-1")


@pytest.fixture
async def fleet() -> AsyncIterator[SocketFleet]:
    fake = SocketFleet({uid: (email, name) for uid, email, name in (ALICE, BOB, CAROL)})
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def two(tmp_path: Path, empty_pg: str, receiver: WebhookReceiver,
              fleet: SocketFleet) -> AsyncIterator[Cluster]:
    settings = {"PIMBOT_ADAPTERS": "slack", "SLACK_BOT_TOKEN": "xoxb-test",
                "PIMBOT_SLACK_API_URL": fleet.api_url}
    each = [{"SLACK_APP_TOKEN": token} for token in APP_TOKENS]
    async with cluster(tmp_path, empty_pg, receiver, 2, settings, each) as replicas:
        await until(lambda: all(fleet.live(t) for t in APP_TOKENS),
                    "both replicas' Socket Mode connections", cluster=replicas)
        yield replicas


_n = iter(range(1, 10_000))


def command(text: str, fleet: SocketFleet, name: str) -> dict[str, Any]:
    envelope = copy.deepcopy(fixture("socket_mode_envelope.json")[1])
    envelope["envelope_id"] = f"env-{name}"
    envelope["payload"].update(user_id=BOB[0], text=text, channel_id=dm_of(BOB[0]),
                               channel_name="directmessage", trigger_id=f"trigger-{name}",
                               response_url=fleet.response_url(name))
    return envelope


def click(user_id: str, action_id: str, value: str, fleet: SocketFleet,
          name: str) -> dict[str, Any]:
    envelope = copy.deepcopy(fixture("socket_mode_envelope.json")[2])
    envelope["envelope_id"] = f"env-{name}"
    payload = envelope["payload"]
    payload["user"]["id"] = user_id
    payload["actions"] = [{"type": "button", "action_id": action_id, "value": value,
                           "block_id": "pim_actions",
                           "action_ts": f"{time.time():.0f}.{next(_n):06d}"}]
    payload["trigger_id"] = f"trigger-{name}"
    payload["response_url"] = fleet.response_url(name)
    payload["channel"] = {"id": dm_of(user_id), "name": "directmessage"}
    payload["container"]["channel_id"] = dm_of(user_id)
    return envelope


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions"
            for e in b["elements"]}


async def _state(replicas: Cluster, request_id: str) -> str:
    return next((r.state for r in await replicas.requests() if r.id == request_id), "")


async def test_envelopes_on_either_socket_and_a_killed_replicas_envelope_redelivered(
        two: Cluster, fleet: SocketFleet) -> None:
    replicas = two
    asked = command("activate prod-db-admin for 1h reason restore", fleet, "ask")
    await fleet.deliver(asked, to=APP_TOKENS[0])
    await until(lambda: fleet.acks_of("env-ask"), "the command's ack", cluster=replicas)
    await until(lambda: fleet.posts_to(ALICE[0]) and fleet.responses("ask"),
                "the approval card", cluster=replicas)
    request_id = buttons(fleet.posts_to(ALICE[0])[0].args["blocks"])["pim_approve"]

    await fleet.deliver(click(ALICE[0], "pim_approve", request_id, fleet, "yes"),
                        to=APP_TOKENS[1])
    await until(lambda: replicas.hooks("grant"), "the grant", cluster=replicas)
    await until_async(lambda: _is(replicas, request_id, "active"), "active", replicas)

    # Replica 0 is frozen, so it cannot ack what it is sent, then killed: Slack sends the
    # envelope again on the connection still open, and replica 1 does the work.
    frozen = replicas.replicas[0]
    os.kill(frozen.process.pid, signal.SIGSTOP)
    try:
        await fleet.deliver(command("deactivate prod-db-admin", fleet, "stop"),
                            to=APP_TOKENS[0])
    finally:
        frozen.kill()  # SIGKILL ends a stopped process too
    await until(lambda: fleet.acks_of("env-stop"), "the redelivered envelope's ack",
                cluster=replicas)
    await until(lambda: replicas.hooks("revoke"), "the revoke", cluster=replicas)
    await until_async(lambda: _is(replicas, request_id, "deactivated"), "deactivated",
                      replicas)
    await until(lambda: fleet.responses("stop"), "the deactivation's answer",
                cluster=replicas)
    await until_async(lambda: _revoked_audited(replicas), "the revoke's audit event", replicas)

    assert fleet.acks_of("env-ask") == [APP_TOKENS[0]]
    assert fleet.acks_of("env-yes") == [APP_TOKENS[1]]
    assert fleet.acks_of("env-stop") == [APP_TOKENS[1]], "acked once, by the survivor"
    assert [d.activation_id for d in replicas.hooks("grant")] == [request_id]
    assert [d.activation_id for d in replicas.hooks("revoke")] == [request_id]
    assert len(await replicas.audit("grant.revoked")) == 1, "recorded once"
    assert len(fleet.responses("stop")) == 1
    assert len(await replicas.requests()) == 1
    await replicas.verify_chain()


async def _is(replicas: Cluster, request_id: str, state: str) -> bool:
    return await _state(replicas, request_id) == state


async def _revoked_audited(replicas: Cluster) -> bool:
    return bool(await replicas.audit("grant.revoked"))
