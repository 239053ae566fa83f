"""CPU and statements of the worker's steady-state iteration, per revoke, at batch size K,
on a queue as a steady stream of expiries leaves it: figures that depend little on the load.

``python bench/batch_iteration.py --backend sqlite --k 13 --rounds 60``: K × ROUNDS active
grants due now (seeded as ``revocation_world`` seeds them), beside FUTURE expiry jobs not due
yet and NOTICES due (waiting behind the batches, as they do while expiries stream in); then
ROUNDS times what the worker's loop does around one batch while others run: the batch claim
(``Worker._claim_batch``), the urgent jobs' claim and the look at when the next job is due
(as ``Worker.run_due`` does while a batch is in flight), the batch (``PimCore._run_batch``:
``revocations.expire_many``, calls over real HTTP to the 50 ms receiver) and its completion.
Reported per revoke: this process's CPU milliseconds; per iteration: the three looks' CPU
and the statements. With 167 expiries a second (``bench_uniform``) the loop sees batches of
about 5-50, so the fixed cost of an iteration is paid nearly per revoke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from pimbot.scheduling.queue import NewJob, enqueue_many
from revocation_world import Receiver, World, each_backend


async def one_backend(label: str, url: str, args: argparse.Namespace,
                      stack: AsyncExitStack, receiver: Receiver) -> dict[str, Any]:
    world = World(url, args.k * args.rounds, receiver, stack)
    await world.prepare()
    assert world.db is not None
    core = world.new_core(f"iteration-{label}")
    now = core.clock.now()
    await world.seed([now] * (args.k * args.rounds))
    async with world.db.transaction() as session:
        await enqueue_many(session, [
            NewJob("expire", {"request_id": f"later{i}"}, now + timedelta(hours=1, seconds=i),
                   f"expire:later{i}", 20, 0) for i in range(args.future)] + [
            NewJob("notify", {"request_id": "none", "audience": "user:nobody@example.com",
                              "view": "requester"}, now - timedelta(seconds=5), None, 12, 5)
            for _ in range(args.notices)])
    await asyncio.sleep(0.05)
    worker = core.worker
    worker.batch_size = args.k
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(world.db.engine.sync_engine, "before_cursor_execute", count)
    looks = [0.0, 0.0, 0.0]
    revoked = 0
    cpu = time.process_time()
    for _ in range(args.rounds):
        started = time.process_time()
        jobs = (await worker._claim_batch()).jobs
        running = frozenset(job.id for job in jobs)
        claimed = time.process_time()
        await worker.queue.claim(16, besides=worker.batch_kinds, max_priority=worker.urgent,
                                 running=running)
        urgent = time.process_time()
        await worker._sleep_seconds(worker.urgent, running)
        looked = time.process_time()
        looks[0] += claimed - started
        looks[1] += urgent - claimed
        looks[2] += looked - urgent
        outcomes = await core._run_batch(jobs)
        done = [job for job, error in outcomes if error is None]
        await worker.completions.complete(done)
        revoked += len(done)
    cpu = time.process_time() - cpu
    event.remove(world.db.engine.sync_engine, "before_cursor_execute", count)
    return {
        f"{label}_revoked": revoked,
        f"{label}_cpu_ms_per_revoke": round(cpu * 1000 / max(revoked, 1), 3),
        f"{label}_looks_cpu_ms_per_iteration": {
            name: round(part * 1000 / args.rounds, 2)
            for name, part in zip(("batch_claim", "urgent_claim", "next_due"), looks,
                                  strict=True)},
        f"{label}_statements_per_iteration": round(statements[0] / args.rounds, 1),
        f"{label}_provider_calls": len(receiver.of("revoke")),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"k": args.k, "rounds": args.rounds, "future": args.future,
                              "notices": args.notices}
    return await each_backend(report, args, one_backend)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--future", type=int, default=10_000)
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "pg"), default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, default=str))
