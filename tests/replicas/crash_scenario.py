"""Three replicas started at the same instant, N activations expiring close together, one
replica SIGKILLed halfway through the revocations; then what must hold. Shared by the test
(a small N) and ``tools/soak_replicas.py`` (N = 2,000)."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from replica_world import World
from sqlalchemy import func, select
from webhook_receiver import WebhookReceiver

from pimbot.store.tables import AuditEventRow, GrantRow, RequestRow
from replica_process import start_replicas

BATCH = 50  # activations filed at once by the test's client


@dataclass(frozen=True)
class Outcome:
    activations: int
    revoked: int
    duplicate_revokes: int  # revoke calls beyond the first per activation (idempotent)
    revoke_events: int
    killed_after_revokes: int
    lateness_p50: float  # seconds from expires_at to the revoke's arrival
    lateness_max: float
    seconds: float


async def run(tmp_path: Path, url: str, receiver: WebhookReceiver, count: int,
              duration: str, max_concurrency: int | None = None) -> Outcome:
    started = time.monotonic()
    world = await World.make(tmp_path, url, receiver, count, max_concurrency)
    replicas = await start_replicas(tmp_path, world.env, 3)
    try:
        for replica in replicas:
            await replica.wait_ready()
        emails = [f"user{n:05d}@example.com" for n in range(count)]
        ids: list[str] = []
        for at in range(0, count, BATCH):
            ids += await world.activate(emails[at:at + BATCH], duration)
        await world.until(lambda: len({d.activation_id for d in receiver.of("grant")}) == count,
                          "every grant", within=120)
        victim = replicas[0]
        revoked = lambda: len({d.activation_id for d in receiver.of("revoke")})  # noqa: E731
        await world.until(lambda: revoked() >= count // 2, "half the revokes", within=180)
        victim.kill()
        killed_after = revoked()
        await world.until(lambda: revoked() == count, "every revoke", within=120)
        await world.until_db(count)
        for replica in replicas[1:]:
            assert await replica.stop() == 0, replica.output()
        took_over = [r for r in replicas[1:] if "is gone (its process" in r.output()]
        assert took_over, "a survivor took over the killed replica's leases at once"
        await victim.reap()
        return await _check(world, receiver, ids, killed_after, time.monotonic() - started)
    finally:
        for replica in replicas:
            await replica.reap()
        await world.close()


async def _check(world: World, receiver: WebhookReceiver, ids: list[str], killed_after: int,
                 seconds: float) -> Outcome:
    grants = {d.activation_id: d for d in receiver.of("grant")}
    revokes = receiver.of("revoke")
    late = []
    for delivery in revokes:
        expires = datetime.fromisoformat(grants[delivery.activation_id].body["expires_at"])
        sent = datetime.fromisoformat(delivery.body["sent_at"])
        assert sent >= expires, f"{delivery.activation_id} revoked early: {sent} < {expires}"
        late.append((sent - expires).total_seconds())
    assert set(grants) == set(ids) and {d.activation_id for d in revokes} == set(ids)
    assert receiver.members == set(), "nobody keeps the role at the provider"
    async with world.client_db.read() as session:
        details = (await session.execute(select(AuditEventRow.detail).where(
            AuditEventRow.action == "grant.revoked"))).scalars().all()
        events = Counter(str(detail["grant"]) for detail in details)
        states = Counter((await session.execute(select(RequestRow.state))).scalars())
        unrevoked = await session.scalar(select(func.count()).select_from(GrantRow).where(
            GrantRow.state != "revoked"))
    assert states == Counter({"expired": len(ids)}), states
    assert unrevoked == 0
    assert len(events) == len(ids) and set(events.values()) == {1}, "one revoke event each"
    await world.verify()
    per_activation = Counter(d.activation_id for d in revokes)
    return Outcome(len(ids), len(per_activation), sum(per_activation.values()) - len(ids),
                   sum(events.values()), killed_after, statistics.median(late), max(late),
                   seconds)


async def run_with_receiver(tmp_path: Path, url: str, count: int, duration: str,
                            latency: float = 0.0, max_concurrency: int | None = None) -> Outcome:
    """``latency`` and ``max_concurrency`` slow the revocations down (a batch of expiries is
    otherwise revoked at once), so that a kill at half of them lands in the middle."""
    receiver = WebhookReceiver("crash-secret-" + "y" * 20, latency)
    await receiver.start()
    try:
        return await run(tmp_path, url, receiver, count, duration, max_concurrency)
    finally:
        await receiver.stop()

