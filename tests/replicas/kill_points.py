"""kill -9 at random points: one small ``pimbot run`` on SQLite with a webhook provider,
a handful of activations filed (and some ended early) while it grants, expires and revokes,
SIGKILLed at a random moment, then started again; after each restart what must hold is
checked. Shared by the test (50 runs) and ``tools/soak_kill_points.py`` (more).

Each start is forked from a warm launcher (``warm_launcher``: the same ``pimbot run`` entry
point in its own process, without re-importing SQLAlchemy, aiohttp and pydantic 51 times).
A cold start used to leave the database alone for the 1.5-2 s of those imports, during
which activations fell due; the pause after each kill now does that on purpose, for a
random 0-1.5 s, so restarts still meet expiries that came due while nothing ran."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from replica_world import ROLE, World, people
from sqlalchemy import func, select
from webhook_receiver import WebhookReceiver

from pimbot.store.tables import AuditEventRow, GrantRow, RequestRow
from pimbot.workflow.actor import Actor
from replica_process import start_replicas
from warm_launcher import Launcher

PEOPLE = 6
LIVE = ("approved", "active")


class SlowReceiver(WebhookReceiver):
    """Answers after a random pause (0–60 ms), so kills land in the middle of calls."""

    def __init__(self, secret: str, rng: random.Random) -> None:
        super().__init__(secret)
        self.rng = rng

    async def _receive(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.rng.uniform(0, 0.06))
        return await super()._receive(request)


@dataclass
class Report:
    runs: int = 0
    kills_mid_call: int = 0
    problems: list[str] = field(default_factory=list)


async def check_after_restart(world: World, spawned: datetime, receiver: WebhookReceiver,
                              run: int) -> list[str]:
    """What must hold once a restarted process is ready (its start-up has run everything
    overdue): nothing active past an end that came before it was spawned, nobody holding
    the role at the provider without a live activation, and the audit chain verifies."""
    problems = []
    async with world.client_db.read() as session:
        overdue = (await session.execute(select(RequestRow.id).where(
            RequestRow.state == "active", RequestRow.expires_at < spawned))).scalars().all()
        live = set((await session.execute(select(RequestRow.email, RequestRow.role).where(
            RequestRow.state.in_(LIVE)))).all())
        # A grant whose last hold has ended is on its way out, not an orphan: its revoke job
        # is durable and may still be waiting for the killed process's provider lease (an
        # expiry during start-up, or a revoke the kill cut short). The final check below
        # proves every one of them was revoked.
        leaving = set((await session.execute(select(GrantRow.email, GrantRow.role).where(
            GrantRow.state == "revoking"))).all())
    if overdue:
        problems.append(f"run {run}: still active past their end after restart: {overdue}")
    orphans = {member for member in receiver.members if member not in live | leaving}
    if orphans:
        problems.append(f"run {run}: held at the provider without a live activation: "
                        f"{await _story(world, receiver, orphans)}")
    try:
        await world.verify()
    except AssertionError as exc:
        problems.append(f"run {run}: audit chain: {exc}")
    return problems


async def _story(world: World, receiver: WebhookReceiver,
                 members: set[tuple[str, str]]) -> str:
    """What the database and the provider say about each slot (to debug a failure)."""
    lines = []
    async with world.client_db.read() as session:
        for email, role in sorted(members):
            grants = (await session.execute(select(
                GrantRow.id, GrantRow.activation_id, GrantRow.state, GrantRow.lease_owner).where(
                GrantRow.email == email, GrantRow.role == role))).all()
            requests = (await session.execute(select(RequestRow.id, RequestRow.state).where(
                RequestRow.email == email))).all()
            calls = [(d.action, d.activation_id) for d in receiver.deliveries
                     if d.body.get("user") == email]
            lines.append(f"{email}: grants {grants}; requests {requests}; calls {calls}")
    return " | ".join(lines)


async def work(world: World, rng: random.Random) -> None:
    """A few activations of 1–3 s, and now and then one ended early."""
    for email in rng.sample(people(PEOPLE), k=3):
        text = f"activate {ROLE} for {rng.choice(['1s', '2s', '3s'])}"
        if rng.random() < 0.3:
            text = f"deactivate {ROLE}"
        await world.client.handle_text(Actor(email), text)  # refusals are fine


async def run(tmp_path: Path, runs: int, seed: int) -> Report:
    rng = random.Random(seed)
    receiver = SlowReceiver("kill-secret-" + "z" * 20, rng)
    await receiver.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}"
    world = await World.make(tmp_path, url, receiver, PEOPLE)
    launcher = await Launcher.start(world.env, tmp_path)
    report = Report()
    try:
        for n in range(runs + 1):
            spawned = datetime.now(UTC)
            [process] = await start_replicas(tmp_path, world.env, 1, launcher=launcher)
            try:
                await process.wait_ready()
                report.problems += await check_after_restart(world, spawned, receiver, n)
                if n == runs:  # the last one runs to the end, then stops cleanly
                    await world.until(lambda: not receiver.members, "every revoke", 30)
                    await world.until_db_quiet()
                    assert await process.stop() == 0, process.output()
                    break
                await work(world, rng)
                await asyncio.sleep(rng.uniform(0, 1.0))
                calls = len(receiver.deliveries)
                process.kill()
                await asyncio.sleep(0.07)  # a call cut off answers into the void
                report.kills_mid_call += len(receiver.deliveries) > calls
                report.runs += 1
                await asyncio.sleep(rng.uniform(0, 1.5))  # down: expiries fall due meanwhile
            finally:
                await process.reap()
        report.problems += await _final(world, receiver)
        return report
    finally:
        await launcher.close()
        await world.close()
        await receiver.stop()


async def _final(world: World, receiver: WebhookReceiver) -> list[str]:
    problems = []
    async with world.client_db.read() as session:
        live = await session.scalar(select(func.count()).select_from(RequestRow).where(
            RequestRow.state.in_(LIVE)))
        grants = (await session.execute(select(GrantRow.id, GrantRow.state))).all()
        events = (await session.execute(select(AuditEventRow.detail).where(
            AuditEventRow.action == "grant.revoked"))).scalars().all()
    revoked = [str(d["grant"]) for d in events]
    if live:
        problems.append(f"{live} requests still live at the end")
    if receiver.members:
        problems.append(f"still held at the provider at the end: {receiver.members}")
    if any(state != "revoked" for _, state in grants):
        problems.append(f"grants not revoked: {[g for g in grants if g[1] != 'revoked']}")
    if sorted(revoked) != sorted(g for g, _ in grants) or len(set(revoked)) != len(revoked):
        problems.append("not exactly one grant.revoked event per grant")
    return problems
