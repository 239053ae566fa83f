"""Activations end to end: request → approve → grant at a no-op provider, per second.

Each request is what chat delivers: the requester's ``activate bench-e2e for 1h reason …``
turn (``core.handle_text``), the approver's Approve click (``core.handle_action``), and then
the real worker loop (``core.start()``) running the grant job, which calls the provider and
moves the request to ACTIVE. A request counts as done when the transaction that made it
ACTIVE has committed (seen through ``Database.on_commit``, no polling). The worker also runs
the notices and card redraws those turns enqueue; ``drained`` times the round until the
queue has nothing due left.

Two shapes of load: ``seq`` (one person at a time, each waiting for their reply) and ``conc``
(``CONCURRENCY`` people typing at once, as a busy workspace delivers them).

Baseline, same run, same ``Database``, same shape: one plain single-row ``INSERT``
transaction per request on a scratch table. Baseline and pimbot rounds alternate after a
warm-up; medians are reported. ``ratio`` = pimbot time / baseline time for the same number of
requests (how many bare transactions one end-to-end activation costs).

Invariants, checked after every run: every request ACTIVE with exactly one grant record,
exactly one provider ``grant`` call per activation id, and the audit chain verifies with
pimbot's own verifier (``verify_chain``).
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import GrantTarget, SystemClock
from pimbot.providers.noop import NoopProvider
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.observations import Figure, committed
from pimbot.store.tables import GrantRow, JobRow, RequestRow
from pimbot.testing.fakes import RecordingChatGateway
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres
from pimbot.ui.cards import ActionId
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ROLE = "bench-e2e"
APPROVER = "lead@example.com"
WARMUP = 10
CONCURRENCY = 16
FULL, QUICK = (200, 3), (30, 1)  # (requests per round, rounds)
DONE_TIMEOUT_S = 120.0
TARGET_PER_S = 300  # issue 14: activations end to end on SQLite
BASELINE = Table(
    "bench_activations_baseline", MetaData(),
    Column("id", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
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
        "    description: Benchmark role (one approval, no-op provider)",
        "    provider: demo",
        "    max_duration: 4h",
        "    approval: {required: true, approvers: [group:leads], min_approvals: 1}",
        "assignments:",
    ]
    lines += [f"  - {{user: {person(i)}, role: {ROLE}, type: eligible}}" for i in range(people)]
    return "\n".join(lines) + "\n"


def person(i: int) -> str:
    return f"req{i:05d}@example.com"


class CountingProvider(NoopProvider):
    """The no-op provider, counting grant calls by activation id (exactly once each)."""

    def __init__(self) -> None:
        super().__init__("demo")
        self.grants: Counter[str] = Counter()

    async def grant(self, target: GrantTarget) -> str | None:
        self.grants[target.activation_id] += 1
        return await super().grant(target)


class ActiveWatch:
    """Counts requests moved to ACTIVE by committed transactions; wakes at a target."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.at = 0.0
        db.on_commit(self._committed)

    def expect(self, more: int) -> None:
        self.target = self.count + more
        self.reached.clear()

    def _committed(self, session: AsyncSession) -> None:
        for seen in committed(session):
            if seen.figure is Figure.REQUEST_MOVED and ("state", "active") in seen.labels:
                self.count += 1
        if self.target and self.count >= self.target and not self.reached.is_set():
            self.at = time.perf_counter()
            self.reached.set()


async def request_and_approve(core: PimCore, requester: str) -> str:
    """One request's two turns; anything but success stops the benchmark."""
    asked = await core.handle_text(Actor(requester, "console"),
                                   f"activate {ROLE} for 1h reason benchmark")
    if not asked.ok or not asked.subject:
        raise RuntimeError(f"request refused: {asked.text}")
    approved = await core.handle_action(Actor(APPROVER, "console"), ActionId.APPROVE,
                                        asked.subject)
    if not approved.ok:
        raise RuntimeError(f"approval refused: {approved.text}")
    return asked.subject


async def fan_out(count: int, width: int, one: Any) -> None:
    """Run ``one(n)`` for n in range(count), at most ``width`` at a time."""
    numbers = iter(range(count))

    async def lane() -> None:
        for n in numbers:
            await one(n)

    await asyncio.gather(*(lane() for _ in range(min(width, count))))


class StatementCount:
    """SQL statements and transactions the engine ran (``BEGIN`` itself not counted).

    With ``BENCH_STATEMENTS=FILE`` the statements of the measured rounds are also tallied by
    their text and written to FILE, most frequent first (where a request's statements go)."""

    def __init__(self, db: Database) -> None:
        self.statements = 0
        self.transactions = 0
        self.texts: Counter[str] = Counter()
        self.tally = bool(os.environ.get("BENCH_STATEMENTS"))
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(db.engine.sync_engine, "begin", self._begin)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        self.statements += 1
        if self.tally:
            self.texts[" ".join(statement.split())[:160]] += 1

    def _begin(self, _conn: Any) -> None:
        self.transactions += 1

    def now(self) -> tuple[int, int]:
        return self.statements, self.transactions


@dataclass(frozen=True)
class Round:
    active_s: float  # until the last request's ACTIVE committed
    drained_s: float  # until nothing was due any more (notices and redraws done)
    cpu_s: float  # this process's CPU time until the last ACTIVE (less noisy on a shared box)
    statements: int = 0  # SQL statements until drained (notices and redraws included)
    transactions: int = 0


async def pimbot_round(core: PimCore, watch: ActiveWatch, people: Iterator[int], count: int,
                       width: int, sql: StatementCount) -> Round:
    chosen = [person(next(people)) for _ in range(count)]
    watch.expect(count)
    before = sql.now()
    started, cpu = time.perf_counter(), time.process_time()
    await fan_out(count, width, lambda n: request_and_approve(core, chosen[n]))
    await asyncio.wait_for(watch.reached.wait(), timeout=DONE_TIMEOUT_S)
    active, cpu_s = watch.at - started, time.process_time() - cpu
    await until_idle(core, sql)
    after = sql.now()
    return Round(active, time.perf_counter() - started, cpu_s,
                 after[0] - before[0], after[1] - before[1])


async def until_idle(core: PimCore, sql: StatementCount) -> None:
    """Wait until no job is due (the notices and redraws of the round are done too); the
    polling's own statements (one read transaction of one statement each) are not counted."""
    while True:
        async with core.db.read() as session:
            due = await session.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.status.in_(("queued", "running")), JobRow.due_at <= core.clock.now()))
        sql.statements -= 1
        sql.transactions -= 1
        if not due:
            return
        await asyncio.sleep(0.02)


async def baseline_round(db: Database, count: int, width: int) -> Round:
    """``count`` single-row INSERT transactions, ``width`` at a time."""
    now = SystemClock().now()

    async def one(_: int) -> None:
        async with db.transaction() as session:
            await session.execute(insert(BASELINE).values(id=secrets.token_hex(8),
                                                          state="pending", at=now))

    started, cpu = time.perf_counter(), time.process_time()
    await fan_out(count, width, one)
    took = time.perf_counter() - started
    return Round(took, took, time.process_time() - cpu)


async def invariants(db: Database, provider: CountingProvider, requests: int
                     ) -> dict[str, Any]:
    async with db.read() as session:
        states = Counter((await session.execute(
            select(RequestRow.state))).scalars())
        grant_rows = Counter((await session.execute(
            select(GrantRow.activation_id))).scalars())
    chain = await verify_chain(db)
    return {
        "requests": requests,
        "active": states.get("active", 0),
        "not_active": sum(n for s, n in states.items() if s != "active"),
        "granted_exactly_once": sum(1 for n in provider.grants.values() if n == 1),
        "duplicate_grants": sum(n - 1 for n in provider.grants.values() if n > 1),
        "grant_records_per_request_max": max(grant_rows.values(), default=0),
        "audit_chain_ok": chain.ok,
        "audit_events": chain.checked,
    }


async def measure(url: str, count: int, rounds: int) -> dict[str, Any]:
    """Warm up, then alternate baseline and pimbot rounds for each shape; medians."""
    clock = SystemClock()
    shapes = {"seq": 1, "conc": CONCURRENCY}
    total = WARMUP + count * rounds * len(shapes)
    threaded = os.environ.get("BENCH_SQLITE_THREADED") == "1"  # the aiosqlite thread, to compare
    db = Database(url, sqlite_inline=False) if threaded else Database(url)
    provider = CountingProvider()
    out: dict[str, Any] = {}
    try:
        await db.upgrade()
        policy = parse_policy(policy_text(total))
        await apply_policy(db, policy, clock)
        async with db.engine.begin() as conn:
            await conn.run_sync(BASELINE.create)
        core = PimCore(db, policy, {"demo": provider}, clock, owner="bench-activations")
        core.add_gateway(RecordingChatGateway())
        watch = ActiveWatch(db)
        sql = StatementCount(db)
        await core.start()
        try:
            people = iter(range(total))
            await pimbot_round(core, watch, people, WARMUP, 1, sql)
            await baseline_round(db, WARMUP, 1)
            sql.texts.clear()
            for shape, width in shapes.items():
                pim, base = [], []
                for _ in range(rounds):
                    base.append(await baseline_round(db, count, width))
                    pim.append(await pimbot_round(core, watch, people, count, width, sql))
                out[shape] = (pim, base)
        finally:
            await core.stop()
        if sql.tally:
            measured = count * rounds * len(shapes)
            await asyncio.to_thread(Path(os.environ["BENCH_STATEMENTS"]).write_text, "".join(
                f"{n / measured:7.2f}  {text}\n" for text, n in sql.texts.most_common()))
        async with db.engine.begin() as conn:
            await conn.run_sync(BASELINE.drop)
        out["invariants"] = await invariants(db, provider, total)
    finally:
        await db.dispose()
    return out


def summarise(label: str, count: int, measured: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for shape in ("seq", "conc"):
        rounds, bases = measured[shape]
        pim = statistics.median(r.active_s for r in rounds)
        base = statistics.median(r.active_s for r in bases)
        cpu = statistics.median(r.cpu_s for r in rounds)
        base_cpu = statistics.median(r.cpu_s for r in bases)
        drained = statistics.median(r.drained_s for r in rounds)
        report.update({
            f"{label}_{shape}_req_per_s": round(count / pim, 1),
            f"{label}_{shape}_drained_req_per_s": round(count / drained, 1),
            f"{label}_{shape}_baseline_tx_per_s": round(count / base, 1),
            f"{label}_{shape}_ms_per_req": round(pim / count * 1000, 2),
            f"{label}_{shape}_cpu_ms_per_req": round(cpu / count * 1000, 2),
            f"{label}_{shape}_statements_per_req": round(
                statistics.median(r.statements for r in rounds) / count, 1),
            f"{label}_{shape}_transactions_per_req": round(
                statistics.median(r.transactions for r in rounds) / count, 1),
            f"{label}_{shape}_ratio": round(pim / base, 2),
            f"{label}_{shape}_cpu_ratio": round(cpu / base_cpu, 2) if base_cpu else math.inf,
        })
    held = measured["invariants"]
    for key, value in held.items():
        report[f"{label}_{key}"] = value
    report[f"{label}_invariants_ok"] = (
        held["active"] == held["requests"] == held["granted_exactly_once"]
        and held["duplicate_grants"] == 0 and held["grant_records_per_request_max"] == 1
        and held["audit_chain_ok"] is True)
    return report


async def main(args: Any) -> dict[str, Any]:
    count, rounds = QUICK if getattr(args, "quick", False) else FULL
    count = int(getattr(args, "requests", None) or count)
    rounds = int(getattr(args, "rounds", None) or rounds)
    report: dict[str, Any] = {"requests_per_round": count, "rounds": rounds,
                              "concurrency": CONCURRENCY}
    only = getattr(args, "database", None)
    async with AsyncExitStack() as stack:
        if only in (None, "sqlite"):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            sqlite = await measure(f"sqlite+aiosqlite:///{folder / 'bench.db'}", count, rounds)
            report.update(summarise("sqlite", count, sqlite))
        if only in (None, "pg"):
            admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
            problem = await postgres_unreachable(admin)
            if problem is not None:
                report["postgres"] = problem
            else:
                url = await scratch_postgres(admin, stack)
                report.update(summarise("pg", count, await measure(url, count, rounds)))
    if "sqlite_conc_req_per_s" in report:  # the headline `pimbot bench` summarises
        shape = max(("seq", "conc"), key=lambda s: float(report[f"sqlite_{s}_req_per_s"]))
        best = report[f"sqlite_{shape}_req_per_s"]
        other = report[f"sqlite_{'conc' if shape == 'seq' else 'seq'}_req_per_s"]
        said = {"seq": "one at a time", "conc": f"{CONCURRENCY} at once"}
        report["figure"] = (f"SQLite request → approve → grant: {best}/s {said[shape]} "
                            f"({report[f'sqlite_{shape}_ratio']}× a plain transaction; "
                            f"{other}/s {said['conc' if shape == 'seq' else 'seq']})")
        report["target"] = f">= {TARGET_PER_S}/s on SQLite, every invariant held"
        report["met"] = bool(best >= TARGET_PER_S and report["sqlite_invariants_ok"]
                             and report.get("pg_invariants_ok", True))
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--database", choices=["sqlite", "pg"], default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
