"""SQL statements and transactions per expiry (or per grant) of one batch, counted on the
engine: figures that do not depend on the machine's load.

``python bench/batch_statements.py --backend pg --kind expire --batch 250``: N active grants
already due (seeded as ``revocation_world`` seeds them), then ``revocations.expire_many``
over all their ``expire`` jobs at once, as the worker hands a claimed batch to it; or, with
``--kind grant``, N people's ``activate`` turns (worker stopped, not counted) and then
``grant_batch.grant_many`` over their ``grant`` jobs. Provider calls go over real HTTP to the
50 ms receiver. Reported: statements (one ``execute`` or ``executemany`` each: a round trip
on asyncpg), the rows sent through ``executemany``, commits, jobs written, this process's
CPU seconds, each per expiry (grant); and every statement's first words with its count, so a
per-row statement shows up as a count of N. Then the same for the follow-ups the batch
queued (``core.drain()``: notices and card redraws, the worker's claims and completions;
the jobs are claimed as the worker claims them; ``jobs_left_to_complete``: those the batch
leaves for the worker's completion transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import event, func, select

from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.audit_log import verify_chain
from pimbot.store.tables import JobRow
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from pimbot.workflow.lifecycle.grant_batch import grant_many
from pimbot.workflow.lifecycle.revocations import expire_many
from revocation_world import ROLE, Receiver, World, each_backend, person


class Counted:
    """A listener on the engine: statements, executemany rows, commits, by statement head."""

    def __init__(self) -> None:
        self.statements = 0
        self.many_rows = 0
        self.commits = 0
        self.heads: Counter[str] = Counter()
        self.on = False

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)

    def _execute(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                 context: Any, executemany: bool) -> None:
        if not self.on:
            return
        self.statements += 1
        if executemany:
            self.many_rows += len(parameters)
        words = statement.split()
        self.heads[" ".join(words[:3]) + (" [many]" if executemany else "")] += 1

    def _commit(self, conn: Any) -> None:
        if self.on:
            self.commits += 1


async def _jobs(core: PimCore, kind: str, limit: int) -> list[ClaimedJob]:
    """The queued jobs of ``kind``, claimed as the worker claims a batch (its lease: the
    batch may mark them done itself, as an expire batch does)."""
    return await core.queue.claim(limit, kinds=frozenset({kind}))


async def _count_jobs(world: World) -> int:
    assert world.db is not None
    async with world.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(JobRow)) or 0)


async def one_backend(label: str, url: str, args: argparse.Namespace,
                      stack: AsyncExitStack, receiver: Receiver) -> dict[str, Any]:
    world = World(url, args.batch, receiver, stack)
    await world.prepare()
    core = world.new_core(f"count-{label}")
    assert world.db is not None
    if args.kind == "expire":
        await world.seed([core.clock.now()] * args.batch)
        await asyncio.sleep(0.05)  # every one of them due
    else:
        for i in range(args.batch):
            await core.handle_text(Actor(person(i)), f"activate {ROLE} for 1h reason count")
    jobs = await _jobs(core, args.kind, args.batch)
    before = await _count_jobs(world)
    counter = Counted()
    counter.attach(world.db.engine.sync_engine)
    counter.on = True
    cpu, wall = time.process_time(), time.perf_counter()
    run = expire_many if args.kind == "expire" else grant_many
    outcomes = await run(core.ctx, jobs)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    counter.on = False
    written = await _count_jobs(world) - before
    n = len(jobs)
    failed = [repr(exc) for _, exc in outcomes if exc is not None]
    left = sum(1 for _, exc in outcomes if exc is None)  # for the worker's completion
    follow = Counted()
    follow.attach(world.db.engine.sync_engine)
    follow.on = True
    cpu_after = time.process_time()
    await core.drain()  # the follow-ups due now: notices, redraws
    cpu_after = time.process_time() - cpu_after
    follow.on = False
    chain = await verify_chain(world.db)
    return {
        f"{label}_followup_statements_per": round(follow.statements / n, 2),
        f"{label}_followup_commits_per": round(follow.commits / n, 2),
        f"{label}_followup_cpu_ms_per": round(cpu_after * 1000 / n, 3),
        f"{label}_followup_by_statement": dict(follow.heads.most_common(8)),
        f"{label}_{args.kind}s": n,
        f"{label}_statements_per": round(counter.statements / n, 3),
        f"{label}_statements": counter.statements,
        f"{label}_executemany_rows": counter.many_rows,
        f"{label}_commits": counter.commits,
        f"{label}_jobs_left_to_complete": left,
        f"{label}_jobs_written_per": round(written / n, 2),
        f"{label}_cpu_ms_per": round(cpu * 1000 / n, 3),
        f"{label}_wall_s": round(wall, 3),
        f"{label}_provider_calls": sum(len(v) for v in receiver.by_action.values()),
        f"{label}_failed": failed[:3],
        f"{label}_chain_ok": chain.ok,
        f"{label}_by_statement": dict(counter.heads.most_common(12)),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"kind": args.kind, "batch": args.batch}
    return await each_backend(report, args, one_backend)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("expire", "grant"), default="expire")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--backend", choices=("sqlite", "pg"), default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, default=str))
