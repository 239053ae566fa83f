"""Read commands at scale: ``roles``, ``status``, ``pending``, ``audit`` on a large database.

The issue's figure: "``roles``, ``status``, ``pending``, ``audit`` at 100,000 assignments and
1,000,000 audit events — each under 50 ms". A scratch database (SQLite file, and the local
PostgreSQL) is migrated and filled in bulk by ``query_data.fill`` (assignments, a history of
requests with active and pending ones, votes, grants, and a valid audit chain), then each
command is typed through the real ``PimCore.handle_text`` as its user would, ``--repeat`` times
(median and p99). Baseline, same run: a primary-key single-row select (``session.get``) in
its own read session, so ``*_ratio`` = command median / baseline median.

Each command's SQL is captured while it runs and explained (``EXPLAIN QUERY PLAN`` on SQLite,
``EXPLAIN`` on PostgreSQL); ``*_scans`` lists the tables any statement reads in full (empty:
every read uses an index). Invariants: the chain verifies with pimbot's own verifier, and each
answer is the expected one (eligible roles listed, the pending request shown, 25 events).
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from pimbot.testing.fakes import RecordingProvider
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore


def _sibling(name: str) -> Any:
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"pimbot_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


data = _sibling("query_data")

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_MS = 50.0
FULL = data.Sizes(assignments=100_000, requests=50_000, active=2_000, pending=1_000,
                  events=1_000_000)
QUICK = data.Sizes(assignments=5_000, requests=2_000, active=100, pending=50, events=20_000)
FULL_REPEAT, QUICK_REPEAT = 100, 10
SCAN = re.compile(r"^(?:.*\bSCAN (\w+)(?! USING)(?!.*INDEX)|.*Seq Scan on (\w+))")


def commands(filled: Any) -> dict[str, tuple[str, str, str]]:
    """name → (who types it, what they type, a piece the answer must hold)."""
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "roles": (filled.probe, "roles", "Your eligible roles:"),
        "status": (filled.probe, "status", "active"),
        "pending": (filled.approver, "pending", "waiting for you"),
        "audit": ("audit@example.com", "audit", "Last 25 audit event(s)"),
        "audit_user": ("audit@example.com", f"audit {filled.probe}", "audit event(s) for"),
        "audit_role": ("audit@example.com", "audit role-7", "audit event(s) for"),
        "audit_nobody": ("audit@example.com", "audit nobody@example.com", "No audit events"),
        "audit_since": ("audit@example.com", f"audit {filled.probe} since {since}", ""),
    }


class Captured:
    """The statements (and their parameters) the engine runs while ``on``."""

    def __init__(self, db: Database) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []

        def before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if self.on and statement.lstrip().upper().startswith("SELECT"):
                self.statements.append((statement, params))

        event.listen(db.engine.sync_engine, "before_cursor_execute", before)


async def explain(db: Database, statements: list[tuple[str, Any]]) -> tuple[list[str], str]:
    """The tables read in full, and the plans' lines in short."""
    found: set[str] = set()
    lines: list[str] = []
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    async with db.engine.connect() as conn:
        for statement, params in statements:
            result = await conn.exec_driver_sql(prefix + statement, params)
            for row in result.all():
                line = str(row[-1]).strip()
                lines.append(re.sub(r"\s+\(cost=[^)]*\)", "", line))
                match = SCAN.match(line)
                if match and not (match.group(1) or "").startswith("anon_"):
                    found.add(match.group(1) or match.group(2))  # not a subquery's rows
    return sorted(found), " | ".join(lines)


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(repeat: int, call: Any) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def one_backend(url: str, sizes: Any, repeat: int, label: str,
                      verify: bool = True) -> dict[str, Any]:
    clock = SystemClock()
    db = Database(url)
    captured = Captured(db)
    report: dict[str, Any] = {}
    try:
        await db.upgrade()
        policy = parse_policy(data.policy_text())
        started = time.perf_counter()
        filled = await data.fill(db, sizes, clock.now())  # the history, then today's policy
        report[f"{label}_fill_s"] = time.perf_counter() - started
        await apply_policy(db, policy, clock)
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
        core = PimCore(db, policy, {"demo": RecordingProvider()}, clock, owner="bench")

        async def baseline() -> None:
            async with db.read() as session:
                await session.get(RequestRow, filled.request_id)

        base = await timed(repeat, baseline)
        report[f"{label}_pk_select_ms"] = statistics.median(base)
        wrong = []
        for name, (who, line, expect) in commands(filled).items():
            captured.on, captured.statements = True, []
            reply = await core.handle_text(Actor(who), line)
            captured.on = False
            if expect not in reply.text:
                wrong.append(f"{name}: {reply.text[:80]!r}")
            samples = await timed(repeat, lambda w=who, t=line: core.handle_text(Actor(w), t))
            report[f"{label}_{name}_ms"] = statistics.median(samples)
            report[f"{label}_{name}_p99_ms"] = quantile(samples, 0.99)
            report[f"{label}_{name}_ratio"] = statistics.median(samples) / statistics.median(base)
            scans, plan = await explain(db, captured.statements)
            report[f"{label}_{name}_scans"] = ",".join(scans) or "none"
            if name.startswith(("audit", "pending")):
                report[f"{label}_{name}_plan"] = plan[:400]
        report[f"{label}_answers"] = "ok" if not wrong else "; ".join(wrong)
        if not verify:
            return report
        started = time.perf_counter()
        chain = await verify_chain(db)
        report[f"{label}_verify_s"] = time.perf_counter() - started
        report[f"{label}_chain"] = "verifies" if chain.ok else f"BROKEN: {chain.problem}"
    finally:
        await db.dispose()
    return report


async def main(args: Any) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    sizes = QUICK if quick else FULL
    repeat = int(getattr(args, "repeat", None) or (QUICK_REPEAT if quick else FULL_REPEAT))
    report: dict[str, Any] = {"assignments": sizes.assignments, "audit_events": sizes.events,
                              "requests": sizes.requests, "repeat": repeat,
                              "target": f"each command < {TARGET_MS:.0f} ms",
                              "load": os.getloadavg()[0]}
    only = getattr(args, "backend", None)  # sqlite | pg (both when None)
    verify = not getattr(args, "no_verify", False)
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if only in (None, "sqlite"):
            report.update(await one_backend(f"sqlite+aiosqlite:///{folder / 'q.db'}", sizes,
                                            repeat, "sqlite", verify))
        admin = os.environ.get("PIMBOT_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES
        problem = await postgres_unreachable(admin)
        if problem is None and only in (None, "pg"):
            url = await scratch_postgres(admin, stack, prefix="pimbot_bench_queries_")
            report.update(await one_backend(url, sizes, repeat, "pg", verify))
        elif problem is not None:
            report["postgres"] = problem
    medians = [v for k, v in report.items() if k.endswith("_ms") and "_pk_" not in k
               and "_p99_" not in k]
    report["worst_median_ms"] = max(medians) if medians else math.nan
    report["meets_target"] = bool(medians) and max(medians) < TARGET_MS and all(
        report[k] in ("ok", "verifies") for k in report if k.endswith(("_answers", "_chain")))
    if not verify:
        report["chain"] = "not verified (--no-verify)"
    report["figure"] = f"slowest median {report['worst_median_ms']:.1f} ms"
    report["met"] = report["meets_target"]
    report["load_after"] = os.getloadavg()[0]
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--backend", choices=("sqlite", "pg"))
    parser.add_argument("--no-verify", action="store_true", help="skip verifying the chain")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
