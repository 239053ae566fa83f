"""The peer side by side: the same burst as ``bench_burst`` (N jobs, 1,000, due at one
instant) through procrastinate, the PostgreSQL job queue a team might pick instead of
pimbot's own scheduler, on the same PostgreSQL database, then through pimbot, in one run.

Each procrastinate job makes the same 50 ms signed call to the same local receiver (its
lateness is measured the same way: arrival at the receiver minus the instant) and nothing
else; its worker runs with the same concurrency as pimbot's provider limit and its default
settings otherwise (LISTEN/NOTIFY, ``fetch_job_polling_interval`` 5 s). pimbot's jobs do
more: the expiry's state change, audit events, the revoke, the notices and card redraws.
Baseline for both: a bare ``loop.call_at`` timer set to the instant, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from pimbot.ports import SystemClock
from pimbot.providers.concurrency import DEFAULT_MAX_CONCURRENCY
from pimbot.testing.scratch import plain_dsn, postgres_unreachable, scratch_postgres
from revocation_world import (
    MS,
    SECRET,
    Receiver,
    World,
    check,
    lateness_report,
    postgres_admin_url,
    quantile,
    timers_for,
    wait_revoked,
)

FULL_N, QUICK_N = 1000, 50
LEAD_S = 3.0


async def procrastinate_burst(dsn: str, receiver: Receiver, people: int) -> dict[str, Any]:
    from procrastinate import App, PsycopgConnector

    app = App(connector=PsycopgConnector(conninfo=dsn))
    lateness: list[float] = []
    done = asyncio.Event()
    http = aiohttp.ClientSession()

    @app.task(name="revoke")
    async def revoke(activation_id: str, due: str) -> None:
        body = json.dumps({"action": "revoke", "activation_id": activation_id}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        arrived = SystemClock().now()
        async with http.post(receiver.url, data=body,
                             headers={"X-Pimbot-Signature": signature}) as response:
            await response.read()
        lateness.append((arrived - datetime.fromisoformat(due)).total_seconds())
        if len(lateness) >= people:
            done.set()

    try:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            worker = asyncio.create_task(app.run_worker_async(
                concurrency=DEFAULT_MAX_CONCURRENCY, install_signal_handlers=False,
                delete_jobs="always"))
            await asyncio.sleep(0.5)
            instant = SystemClock().now() + timedelta(seconds=LEAD_S + people / 500)
            deferring = time.monotonic()
            for start in range(0, people, 100):
                await revoke.configure(schedule_at=instant).batch_defer_async(*(
                    {"activation_id": f"p{i}", "due": instant.isoformat()}
                    for i in range(start, min(people, start + 100))))
            deferred_s = time.monotonic() - deferring
            fired = timers_for([instant])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), (instant - SystemClock().now())
                                       .total_seconds() + 60)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
    finally:
        await http.close()
    timer_p99 = quantile(fired, 0.99)
    p99 = quantile(lateness, 0.99)
    return {
        "procrastinate_p50_ms": round(quantile(lateness, 0.5) * MS, 1),
        "procrastinate_p99_ms": round(p99 * MS, 1),
        "procrastinate_max_ms": round(max(lateness) * MS, 1) if lateness else None,
        "procrastinate_timer_p99_ms": round(timer_p99 * MS, 2),
        "procrastinate_p99_ratio": round(p99 / timer_p99, 1) if timer_p99 > 0 else None,
        "procrastinate_ran": len(lateness),
        "procrastinate_defer_s": round(deferred_s, 2),
    }


async def pimbot_burst(url: str, receiver: Receiver, people: int,
                       stack: AsyncExitStack) -> dict[str, Any]:
    world = World(url, people, receiver, stack)
    await world.prepare()
    core = await world.start_core("bench-peer")
    stack.push_async_callback(world.stop_cores)
    receiver.reset()
    instant = core.clock.now() + timedelta(seconds=LEAD_S + people / 500)
    ids = await world.seed([instant] * people)
    fired = timers_for([instant])
    await wait_revoked(receiver, ids, (instant - core.clock.now()).total_seconds() + 60)
    assert world.db is not None
    return lateness_report("pimbot", await check(
        world.db, receiver, dict.fromkeys(ids, instant), fired))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    people = int(getattr(args, "activations", None) or (QUICK_N if quick else FULL_N))
    report: dict[str, Any] = {"jobs": people, "provider_latency_ms": 50,
                              "concurrency": DEFAULT_MAX_CONCURRENCY}
    admin = postgres_admin_url()
    problem = await postgres_unreachable(admin)
    if problem is not None:
        return {**report, "postgres": f"skipped: {problem}"}
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        receiver = Receiver()
        await receiver.start()
        stack.push_async_callback(receiver.stop)
        url = await scratch_postgres(admin, stack)  # one database for both
        report.update(await procrastinate_burst(plain_dsn(url), receiver, people))
        async with AsyncExitStack() as inner:
            report.update(await pimbot_burst(url, receiver, people, inner))
    pim, peer = report.get("pimbot_p99_ms"), report.get("procrastinate_p99_ms")
    if isinstance(pim, float) and isinstance(peer, float) and pim > 0:
        report["procrastinate_p99_over_pimbot_p99"] = round(peer / pim, 2)
    if isinstance(pim, float) and isinstance(peer, float):
        report["figure"] = f"p99 pimbot {pim:.0f} ms, procrastinate {peer:.0f} ms"
        report["met"] = (pim < peer and report.get("pimbot_revoked_exactly_once") == people
                         and not report.get("pimbot_early") and
                         bool(report.get("pimbot_audit_chain_ok")))
    report["target"] = "pimbot ahead of procrastinate"
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--activations", type=int, default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, default=str))
