"""Approval throughput: requests created and approved through the real ``PimCore``, per second.

Each request is two chat turns as a console user would type and click them:
``activate bench-approve for 1h reason …`` by its requester (``core.handle_text``), then the
approver's Approve button (``core.handle_action``). Each turn is pimbot's full path: parse,
authorize, compare-and-set, hash-chained audit event and outbox jobs in one transaction. The
worker is not running, so follow-up jobs (approver notices, the grant) stay queued:
bench_revocation measures the worker.

Baseline, same run, same ``Database``: per request one bare single-row ``INSERT`` transaction
and one single-row ``UPDATE`` transaction on a scratch table (the least a database can do to
record a request and its decision). Baseline and pimbot rounds alternate; medians are reported.
``time_ratio`` = pimbot time / baseline time, on SQLite and on the local PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, update

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.store.database import Database
from pimbot.testing.fakes import RecordingChatGateway, RecordingProvider
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres
from pimbot.ui.cards import ActionId
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ROLE = "bench-approve"
APPROVER = "lead@example.com"
WARMUP = 5
FULL, QUICK = (50, 3), (15, 1)  # (requests per round, rounds)
BASELINE = Table(
    "bench_approval_baseline", MetaData(),
    Column("id", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)


def policy_text(people: int) -> str:
    lines = [
        "admins: [admin@example.com]",
        "groups:",
        f"  leads: [{APPROVER}]",
        "providers:",
        "  demo: {type: noop}",
        "roles:",
        f"  {ROLE}:",
        "    description: Benchmark role (one approval)",
        "    provider: demo",
        "    max_duration: 4h",
        "    approval: {required: true, approvers: [group:leads], min_approvals: 1}",
        "assignments:",
    ]
    lines += [f"  - {{user: {person(i)}, role: {ROLE}, type: eligible}}" for i in range(people)]
    return "\n".join(lines) + "\n"


def person(i: int) -> str:
    return f"req{i:05d}@example.com"


async def request_and_approve(core: PimCore, requester: str) -> None:
    """One request's two turns; anything but success stops the benchmark."""
    asked = await core.handle_text(Actor(requester, "console"),
                                   f"activate {ROLE} for 1h reason benchmark")
    if not asked.ok or asked.card is None:
        raise RuntimeError(f"request refused: {asked.text}")
    request_id = asked.card.context.split()[-1]
    approved = await core.handle_action(Actor(APPROVER, "console"), ActionId.APPROVE, request_id)
    if not approved.ok:
        raise RuntimeError(f"approval refused: {approved.text}")


async def pimbot_round(core: PimCore, people: Iterator[int], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await request_and_approve(core, person(next(people)))
    return time.perf_counter() - started


async def baseline_round(db: Database, count: int) -> float:
    """``count`` single-row INSERT transactions, each followed by its UPDATE transaction."""
    now = SystemClock().now()
    started = time.perf_counter()
    for _ in range(count):
        row_id = secrets.token_hex(8)
        async with db.transaction() as session:
            await session.execute(insert(BASELINE).values(id=row_id, state="pending",
                                                          changed_at=now))
        async with db.transaction() as session:
            await session.execute(
                update(BASELINE)
                .where(BASELINE.c.id == row_id, BASELINE.c.state == "pending")
                .values(state="approved", changed_at=now))
    return time.perf_counter() - started


async def measure(url: str, count: int, rounds: int) -> dict[str, float]:
    """Warm up, then alternate baseline and pimbot rounds; medians of each."""
    clock = SystemClock()
    db = Database(url)
    try:
        await db.upgrade()
        policy = parse_policy(policy_text(WARMUP + count * rounds))
        await apply_policy(db, policy, clock)
        core = PimCore(db, policy, {"demo": RecordingProvider()}, clock)
        core.add_gateway(RecordingChatGateway())
        async with db.engine.begin() as conn:
            await conn.run_sync(BASELINE.create)
        people = iter(range(WARMUP + count * rounds))
        await pimbot_round(core, people, WARMUP)
        await baseline_round(db, WARMUP)
        pim, base = [], []
        for _ in range(rounds):
            base.append(await baseline_round(db, count))
            pim.append(await pimbot_round(core, people, count))
        async with db.engine.begin() as conn:
            await conn.run_sync(BASELINE.drop)
    finally:
        await db.dispose()
    return {"pimbot_s": statistics.median(pim), "baseline_s": statistics.median(base)}


def summarise(label: str, count: int, timings: dict[str, float]) -> dict[str, Any]:
    pim, base = timings["pimbot_s"], timings["baseline_s"]
    return {
        f"{label}_pimbot_req_per_s": round(count / pim, 1),
        f"{label}_baseline_req_per_s": round(count / base, 1),
        f"{label}_pimbot_ms_per_req": round(pim / count * 1000, 2),
        f"{label}_baseline_ms_per_req": round(base / count * 1000, 2),
        f"{label}_time_ratio": round(pim / base, 2),
    }


async def main(args: Any) -> dict[str, Any]:
    count, rounds = QUICK if getattr(args, "quick", False) else FULL
    count = int(getattr(args, "requests", None) or count)
    report: dict[str, Any] = {"requests_per_round": count, "rounds": rounds}
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite = await measure(f"sqlite+aiosqlite:///{folder / 'bench.db'}", count, rounds)
        report.update(summarise("sqlite", count, sqlite))
        admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
        problem = await postgres_unreachable(admin)
        if problem is not None:
            report["postgres"] = problem
        else:
            url = await scratch_postgres(admin, stack)
            report.update(summarise("pg", count, await measure(url, count, rounds)))
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
