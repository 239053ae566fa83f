"""SIGTERM stops a replica gracefully: it stops claiming, lets the provider call in flight
finish and records it, releases every lease it holds, leaves the replicas table, writes the
last audit checkpoint and exits 0."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web
from replica_world import World
from sqlalchemy import func, select
from webhook_receiver import WebhookReceiver

from pimbot.store.audit_checkpoint import chain_head
from pimbot.store.tables import GrantRow, JobRow, ReplicaRow, RequestRow
from replica_process import start_replicas


class GatedReceiver(WebhookReceiver):
    """Holds every call until ``gate`` opens; ``arrived`` is set when the first comes in."""

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.gate = asyncio.Event()
        self.arrived = asyncio.Event()

    async def _receive(self, request: web.Request) -> web.Response:
        self.arrived.set()
        await self.gate.wait()
        return await super()._receive(request)


@pytest.mark.postgres
async def test_sigterm_finishes_the_call_in_flight_and_gives_everything_back(
    tmp_path: Path, empty_pg: str
) -> None:
    receiver = GatedReceiver("gate-secret-" + "x" * 20)
    await receiver.start()
    world = await World.make(tmp_path, empty_pg, receiver, 1)
    [replica] = await start_replicas(tmp_path, world.env, 1)
    try:
        await replica.wait_ready()
        [request] = await world.activate(["user00000@example.com"], "1h")
        async with asyncio.timeout(30):
            await receiver.arrived.wait()  # the grant call is in flight at the provider
        replica.process.terminate()  # SIGTERM
        await asyncio.sleep(0.5)
        assert replica.process.returncode is None, "it waits for the call in flight"
        receiver.gate.set()
        assert await replica.stop() == 0, replica.output()

        async with world.client_db.read() as session:
            row = await session.get(RequestRow, request)
            grants = (await session.execute(select(GrantRow))).scalars().all()
            held_jobs = await session.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.lease_owner.is_not(None)))
            replicas = await session.scalar(select(func.count()).select_from(ReplicaRow))
        assert row is not None and row.state == "active", "the call's outcome was recorded"
        assert [(g.state, g.lease_owner, g.lease_token) for g in grants] == [
            ("granted", None, None)]
        assert held_jobs == 0 and replicas == 0
        lines = (tmp_path / "checkpoints.jsonl").read_text(encoding="utf-8").splitlines()
        assert json.loads(lines[-1])["head_seq"] == (await chain_head(world.client_db)).seq
        await world.verify()
    finally:
        receiver.gate.set()
        await replica.reap()
        await world.close()
        await receiver.stop()
