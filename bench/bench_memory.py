"""Memory: the resident set of a running core holding 10,000 live activations.

The issue's figure: "RSS with 10,000 live activations — under 150 MB". A child process (so
nothing of this one is counted) migrates a fresh SQLite database, makes every person eligible
for a self-service role (noop provider) — ``store``: assignments made by admins, rows the
policy file does not list; ``policy``: all N listed in the policy file, whose parse costs
memory of its own — starts the real ``PimCore``
and reads ``VmRSS`` from ``/proc/self/status``: that is the baseline (the core started, no
activation). Then ``--sample`` people activate through ``PimCore.handle_text`` as they would
type it, the rest up to ``--activations`` are written in bulk (rows and grants as an
activation leaves them, expiry jobs by pimbot's own ``schedule_expiry``), the worker loop
runs, people ask ``status`` and ``roles``, and ``VmRSS`` / ``VmHWM`` (the peak) are read again.

Reported: both RSS figures in MB, ``rss_ratio`` (live / baseline), bytes per activation.
Invariants: every activation is live at the end (none ended early), each real one was
granted once, and the audit chain verifies with pimbot's verifier.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from pimbot.domain.states import RequestState
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.providers import build_providers
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, GrantRow, RequestRow
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from pimbot.workflow.lifecycle.expiry import schedule_expiry

TARGET_MB = 150.0
FULL_N, QUICK_N = 10_000, 1_000
FULL_SAMPLE, QUICK_SAMPLE = 300, 50
CHUNK = 1000
ROLE = "mem-role"


def policy_text(people: int) -> str:
    """The role, and ``people`` eligible for it in the file (0: none listed)."""
    lines = ["admins: [admin@example.com]", "providers:", "  demo: {type: noop}", "roles:",
             f"  {ROLE}:", "    description: Memory bench role", "    provider: demo",
             "    max_duration: 12h", "    require_justification: false",
             "    expiry_reminder: 10m", "assignments:"]
    lines += [f"  - {{user: m{i}@example.com, role: {ROLE}, type: eligible}}"
              for i in range(people)]
    return "\n".join(lines) + "\n"


def rss() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


async def bulk_activations(core: PimCore, first: int, last: int) -> None:
    """Rows as a granted activation leaves them, and their expiry jobs, CHUNK a transaction."""
    ctx, now = core.ctx, core.clock.now()
    for start in range(first, last, CHUNK):
        rows, grants = [], []
        for i in range(start, min(last, start + CHUNK)):
            rid, expires = f"m{i:08d}", now + timedelta(hours=8)
            rows.append(RequestRow(
                id=rid, kind="activation", email=f"m{i}@example.com", role=ROLE,
                state=RequestState.ACTIVE.value, version=1, duration_s=8 * 3600,
                reason="bench", ticket="", platform="console", min_approvals=0,
                requested_at=now, start_at=now, granted_at=now, expires_at=expires,
                grant_id=f"g{i:08d}", decided_by="", decision_note="", rule_note="",
                escalation=0, failure="", votes_count=0))
            grants.append({"id": f"g{i:08d}", "email": f"m{i}@example.com", "role": ROLE,
                           "provider": "demo", "params": {}, "activation_id": rid,
                           "state": "granted", "starts_at": now, "expires_at": expires,
                           "created_at": now, "granted_at": now, "failures": 0,
                           "failure": "", "version": 1})
        async with ctx.db.transaction() as session:
            session.add_all(rows)
            await session.execute(insert(GrantRow), grants)
            for row in rows:
                await schedule_expiry(ctx, session, row)
        del rows, grants


async def admin_assignments(db: Database, people: int, now: Any) -> None:
    """Eligibility granted by admins (``assign``), stored rows the policy file does not list."""
    for start in range(0, people, CHUNK):
        async with db.transaction() as session:
            await session.execute(insert(AssignmentRow), [
                {"id": f"a{i:08d}", "email": f"m{i}@example.com", "role": ROLE,
                 "type": "eligible", "starts_at": None, "ends_at": None, "source": "admin",
                 "created_by": "admin@example.com", "created_at": now, "removed_at": None,
                 "removed_by_review": None, "review_hold": False}
                for i in range(start, min(people, start + CHUNK))])


async def child(folder: Path, people: int, sample: int, where: str) -> dict[str, Any]:
    """``where`` the eligibility is: ``policy`` (N entries in the file) or ``store``."""
    clock = SystemClock()
    db = Database(f"sqlite+aiosqlite:///{folder / f'memory-{where}.db'}")
    await db.upgrade()
    policy = parse_policy(policy_text(people if where == "policy" else 0))
    await apply_policy(db, policy, clock)
    if where == "store":
        await admin_assignments(db, people, clock.now())
    core = PimCore(db, policy, build_providers(policy.providers, {}, clock=clock), clock,
                   owner="bench-memory")
    await core.start()
    for i in range(0, 20):  # warm the code paths the live pass takes
        await core.handle_text(Actor(f"m{i}@example.com"), "status")
    gc.collect()
    baseline = rss()
    started = time.perf_counter()
    for start in range(0, sample, 10):
        await asyncio.gather(*(core.handle_text(Actor(f"m{i}@example.com"),
                                                f"activate {ROLE} for 8h reason bench")
                               for i in range(start, min(sample, start + 10))))
    await core.drain()
    await bulk_activations(core, sample, people)
    build_s = time.perf_counter() - started
    await asyncio.sleep(3)  # the worker loop looks at the queue with 10,000 jobs waiting
    for i in range(0, people, max(1, people // 200)):
        await core.handle_text(Actor(f"m{i}@example.com"), "status")
        await core.handle_text(Actor(f"m{i}@example.com"), "roles")
    gc.collect()
    live = rss()
    async with db.read() as session:
        active = await session.scalar(select(func.count()).select_from(RequestRow).where(
            RequestRow.state == RequestState.ACTIVE.value))
        granted = await session.scalar(select(func.count()).select_from(GrantRow).where(
            GrantRow.state == "granted"))
    await core.stop()
    chain = await verify_chain(db)
    await db.dispose()
    return {"baseline_rss_mb": baseline["VmRSS"], "live_rss_mb": live["VmRSS"],
            "peak_rss_mb": live["VmHWM"], "active": active, "granted": granted,
            "build_s": build_s, "chain": "verifies" if chain.ok else f"BROKEN: {chain.problem}"}


async def run_child(people: int, sample: int, where: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", folder, str(people), str(sample), where,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError("memory child failed: " + err.decode(errors="replace")[-800:])
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    problems = []
    if result["active"] != people:
        problems.append(f"{result['active']} live activations of {people}")
    if result["granted"] != people:
        problems.append(f"{result['granted']} granted grants of {people}")
    if result["chain"] != "verifies":
        problems.append(result["chain"])
    growth = result["live_rss_mb"] - result["baseline_rss_mb"]
    result.update(rss_ratio=result["live_rss_mb"] / result["baseline_rss_mb"],
                  bytes_per_activation=growth * 1024 * 1024 / people,
                  invariants="; ".join(problems) or "ok")
    return {f"{where}_{key}": value for key, value in result.items()}


async def main(args: Any) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    people = int(getattr(args, "activations", None) or (QUICK_N if quick else FULL_N))
    sample = min(people, QUICK_SAMPLE if quick else FULL_SAMPLE)
    report: dict[str, Any] = {"activations": people, "through_handle_text": sample,
                              "target": f"live RSS < {TARGET_MB:.0f} MB",
                              "load": os.getloadavg()[0]}
    for where in ("store", "policy"):
        report.update(await run_child(people, sample, where))
    report["meets_target"] = all(
        report[f"{w}_live_rss_mb"] < TARGET_MB and report[f"{w}_invariants"] == "ok"
        for w in ("store", "policy"))
    report["figure"] = (f"live RSS {report['store_live_rss_mb']:.0f} MB (store), "
                        f"{report['policy_live_rss_mb']:.0f} MB (policy file)")
    report["met"] = report["meets_target"]
    report["load_after"] = os.getloadavg()[0]
    return report


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        report = asyncio.run(child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                   sys.argv[5]))
        print(json.dumps(report))
    else:
        import argparse

        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--activations", type=int)
        print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
