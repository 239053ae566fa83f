"""Start-up: a real ``pimbot run`` with thousands of active assignments in its policy.

The issue's figure: "start with 1,500 active assignments in the policy — ``/healthz`` within
2 s of start whatever the policy size; ``/readyz`` says when the policy is applied". Each pass
starts ``pimbot run`` (``PIMBOT_ADAPTERS=none``: the HTTP server and the scheduler) as a
subprocess on a fresh database, SQLite and the local PostgreSQL, with a policy of N active
assignments (noop provider), and polls every 20 ms:

- ``healthz_s``: spawn → ``/healthz`` answers 200;
- ``applied_s``: spawn → ``/readyz`` no longer says "policy not applied";
- ``ready_s``: spawn → ``/readyz`` answers 200 (the scheduler has caught up: every active
  assignment granted);
- ``slowest_answer_s``: the slowest answer to a poll after the first ``/healthz``, until the
  last milestone watched: how long the event loop was frozen at most (a liveness probe with
  a one-second timeout fails beyond that).

Baseline, same run, started the same way: a bare aiohttp app subprocess serving ``/healthz``
(``healthz_ratio`` = pimbot / bare; the interpreter's own start dominates both). Invariants
checked after each pass: one live assignment row per policy entry, each active assignment
granted once, SIGTERM exits 0, and ``pimbot audit verify`` passes on the chain it wrote.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from pimbot.domain.states import RequestState
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, RequestRow
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FULL_SIZES, QUICK_SIZES = (1500, 5000), (300,)
FULL_REPEAT, QUICK_REPEAT = 2, 1
TARGET_HEALTHZ_S = 2.0
POLL_S = 0.02
START_TIMEOUT_S = 600.0
ROLES = 30
NOT_APPLIED = "policy not applied"
BARE_APP = """
import os
from aiohttp import web
async def healthz(_request):
    return web.Response(text="ok\\n")
app = web.Application()
app.router.add_get("/healthz", healthz)
web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None)
"""


def policy_text(assignments: int) -> str:
    lines = ["admins: [admin@example.com]", "auditors: [audit@example.com]", "providers:",
             "  demo: {type: noop}", "roles:"]
    for r in range(ROLES):
        lines += [f"  role-{r}:", f"    description: Bench role {r}", "    provider: demo",
                  "    max_duration: 8h"]
    lines.append("assignments:")
    lines += [f"  - {{user: user{i}@example.com, role: role-{i % ROLES}, type: active, "
              "until: 2099-01-01}" for i in range(assignments)]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pimbot_command() -> list[str]:
    script = Path(sys.executable).with_name("pimbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pimbot_server.cli"]


def bench_env(folder: Path, url: str, policy: Path, port: int, run: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIMBOT_", "SLACK_", "MICROSOFT_"))}
    key = folder / "secret.key"
    if not key.exists():
        key.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    env.update(PIMBOT_DATABASE_URL=url, PIMBOT_POLICY=str(policy), PIMBOT_ADAPTERS="none",
               PIMBOT_HOST="127.0.0.1", PIMBOT_PORT=str(port),
               PIMBOT_SECRET_KEY=key.read_text(),
               PIMBOT_AUDIT_CHECKPOINT=str(folder / f"checkpoints-{run}"),
               PIMBOT_AUDIT_RETENTION="forever")
    return env


@dataclass
class Pass:
    healthz_s: float
    slowest_answer_s: float = 0.0
    applied_s: float | None = None
    ready_s: float | None = None
    problems: list[str] = field(default_factory=list)


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str] | None:
    try:
        async with http.get(url) as response:
            return response.status, await response.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


async def watch(process: asyncio.subprocess.Process, base: str, started: float,
                full: bool, until_ready: bool = True) -> Pass:
    """Poll /healthz, then /readyz, noting when each milestone is first seen (up to the
    policy applied only, when not ``until_ready``)."""
    timeout = aiohttp.ClientTimeout(total=5)
    result: Pass | None = None
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.monotonic() - started < START_TIMEOUT_S:
            if process.returncode is not None:
                raise RuntimeError(f"exited {process.returncode} during start")
            if result is None:
                answer = await _get(http, base + "/healthz")
                if answer is not None and answer[0] == 200:
                    result = Pass(time.monotonic() - started)
                    if not full:
                        return result
            else:
                asked = time.monotonic()
                answer = await _get(http, base + "/readyz")
                now = time.monotonic() - started
                result.slowest_answer_s = max(result.slowest_answer_s,
                                              time.monotonic() - asked)
                if answer is not None and NOT_APPLIED not in answer[1]:
                    result.applied_s = result.applied_s or now
                    if not until_ready:
                        return result
                if answer is not None and answer[0] == 200:
                    result.ready_s = now
                    return result
            await asyncio.sleep(POLL_S)
    raise RuntimeError(f"not ready within {START_TIMEOUT_S:.0f} s")


async def stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -9


async def bare_pass() -> float:
    port = free_port()
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BARE_APP, env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return (await watch(process, f"http://127.0.0.1:{port}", started, full=False)).healthz_s
    finally:
        await stop(process)


async def pimbot_pass(folder: Path, url: str, assignments: int, run: int,
                      until_ready: bool = True) -> Pass:
    policy = folder / f"policy-{assignments}.yaml"
    policy.write_text(policy_text(assignments), encoding="utf-8")
    port = free_port()
    env = bench_env(folder, url, policy, port, run)
    log = folder / "pimbot.log"
    started = time.monotonic()
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            *pimbot_command(), "run", cwd=folder, env=env, stdin=subprocess.DEVNULL,
            stdout=sink, stderr=sink)
    try:
        result = await watch(process, f"http://127.0.0.1:{port}", started, full=True,
                             until_ready=until_ready)
    finally:
        code = await stop(process)
    if code != 0:
        result.problems.append(f"SIGTERM exit {code}")
    result.problems += await check_store(url, assignments, granted=until_ready)
    # stopped before its first checkpoint (``--until-applied``): the chain alone is checked
    flags = [] if until_ready else ["--no-checkpoint"]
    verify = await asyncio.create_subprocess_exec(
        *pimbot_command(), "audit", "verify", *flags, cwd=folder, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await verify.communicate()
    if verify.returncode != 0:
        result.problems.append("audit verify: " + err.decode(errors="replace")[-300:])
    return result


async def check_store(url: str, assignments: int, granted: bool = True) -> list[str]:
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.scalar(select(func.count()).select_from(AssignmentRow).where(
                AssignmentRow.removed_at.is_(None)))
            active = await session.scalar(select(func.count()).select_from(RequestRow).where(
                RequestRow.assignment_id.is_not(None),
                RequestRow.state == RequestState.ACTIVE.value))
            distinct = await session.scalar(select(func.count(
                RequestRow.assignment_id.distinct())).where(
                RequestRow.state == RequestState.ACTIVE.value))
    finally:
        await db.dispose()
    problems = []
    if rows != assignments:
        problems.append(f"{rows} assignment rows for {assignments} in the policy")
    if granted and (active != assignments or distinct != assignments):
        problems.append(f"{active} active grants ({distinct} distinct) for {assignments}")
    return problems


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def fresh_url(backend: str, folder: Path, stack: AsyncExitStack, run: int) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{folder / f'start-{run}.db'}"
    return await scratch_postgres(postgres_admin_url(), stack, prefix="pimbot_bench_start_")


def postgres_admin_url() -> str:
    return os.environ.get("PIMBOT_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES


async def main(args: Any) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    sizes = QUICK_SIZES if quick else FULL_SIZES
    if getattr(args, "sizes", None):
        sizes = tuple(int(n) for n in str(args.sizes).split(","))
    until_ready = not getattr(args, "until_applied", False)  # skip the catch-up's wait
    repeat = int(getattr(args, "repeat", None) or (QUICK_REPEAT if quick else FULL_REPEAT))
    report: dict[str, Any] = {"target": f"/healthz ≤ {TARGET_HEALTHZ_S} s at any policy size",
                              "repeat": repeat, "load": os.getloadavg()[0]}
    backends = ["sqlite"]
    problem = await postgres_unreachable(postgres_admin_url())
    if problem is None:
        backends.append("pg")
    else:
        report["postgres"] = problem
    bare: list[float] = []
    worst = 0.0
    problems: list[str] = []
    run = 0
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for backend in backends:
            for size in sizes:
                passes: list[Pass] = []
                for _ in range(repeat):
                    run += 1
                    bare.append(await bare_pass())
                    url = await fresh_url(backend, folder, stack, run)
                    passes.append(await pimbot_pass(folder, url, size, run, until_ready))
                label = f"{backend}_{size}"
                healthz = median([p.healthz_s for p in passes])
                worst = max([worst] + [p.healthz_s for p in passes])
                report[f"{label}_healthz_s"] = healthz
                report[f"{label}_applied_s"] = median([p.applied_s or 0.0 for p in passes])
                report[f"{label}_slowest_answer_s"] = max(p.slowest_answer_s for p in passes)
                if until_ready:
                    report[f"{label}_ready_s"] = median([p.ready_s or 0.0 for p in passes])
                report[f"{label}_healthz_ratio"] = healthz / median(bare)
                problems += [f"{label}: {x}" for p in passes for x in p.problems]
    report["bare_healthz_s"] = median(bare)
    report["worst_healthz_s"] = worst
    report["invariants"] = "ok" if not problems else "; ".join(problems)[:500]
    report["meets_target"] = worst <= TARGET_HEALTHZ_S and not problems
    report["figure"] = f"/healthz worst {worst:.2f} s (bare app {median(bare):.2f} s)"
    report["met"] = report["meets_target"]
    report["load_after"] = os.getloadavg()[0]
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--sizes", help="policy sizes, e.g. 1500,5000")
    parser.add_argument("--until-applied", action="store_true",
                        help="stop each pass once the policy is applied (not the catch-up)")
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
