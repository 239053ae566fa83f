"""Replicas: do separate ``pimbot run`` processes on one PostgreSQL database add throughput?

Each pass starts N real ``pimbot run`` processes (``PIMBOT_ADAPTERS=none``: the HTTP health
routes and the scheduler) on a scratch PostgreSQL database, with a webhook provider pointing
at a receiver in this process that takes 50 ms to answer each call (a slow IAM system, over
real HTTP). A client core here files K activations of a no-approval role, all ``at`` the same
start instant T0 and for the same duration, so K grants fall due at T0 and K expiries at one
later instant: two bursts that only the replicas' schedulers work through.

Two configurations, reported side by side and never mixed up:

- ``cpu`` (keys without a prefix): the provider allows pimbot's default concurrency (64 calls
  at once per process), so a burst is bound by the CPU the replicas and PostgreSQL get; on a
  machine where PostgreSQL shares the replicas' cores this measures the cores, not pimbot;
- ``provider`` (keys prefixed ``provider_``): ``max_concurrency`` of ``PROVIDER_BOUND`` (2)
  calls at once per replica, what a slow IAM API allows one client, with the same 50 ms
  receiver: each replica is bound by its provider calls (2 / 50 ms = 40 revokes/s), not by the
  CPU, the case more replicas exist for.

Figures per pass: each burst's throughput (calls per second from the burst's first provider
call to its last) and drain (from the instant it fell due to its last call); the machine's
CPU use during the expiry burst (all of it: the replicas, PostgreSQL, everyone else), each
replica's CPU seconds in it, the CPU seconds of this database's PostgreSQL backends in it,
both per revoke, the cores the benchmark's own processes kept busy (``own_cores``) and the
cores everything else did meanwhile (``others_cores``: other people's work on a shared
machine), and the database's committed transactions per revoke. From the CPU per revoke,
``cpu_ceiling_per_s`` is the most any scheduler could reach with every core to itself:
min(cores / (replica + PostgreSQL CPU per revoke), replicas / replica CPU per revoke). The
baseline is one replica in the same run: ``revoke_ratio_2r`` = 2-replica throughput / 1-replica
throughput (target >= 1.7). Passes repeat ``--repeat`` times; medians are reported.

Invariants, checked after every pass: every activation granted once and revoked exactly
once at the provider, no revoke before its expiry, one ``grant.revoked`` audit event each, and
the audit chain verifies with pimbot's own verifier.

    .venv/bin/python bench/bench_replicas.py [--quick] [--activations K] [--repeat R]
        [--replicas 1,2,3] [--configs cpu,provider] [--profile DIR]  # py-spy: the expiries
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from pimbot.policy import parse_policy
from pimbot.ports import SystemClock
from pimbot.providers import build_providers
from pimbot.secretbox import generate_key
from pimbot.store.audit_crypto import AuditKeyring, load_audit_key
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow
from pimbot.testing.scratch import plain_dsn, postgres_unreachable, scratch_postgres
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ROLE = "burst"
SECRET_ENV = "BENCH_HOOK_SECRET"
PROVIDER_S = 0.050  # each webhook call takes this long to answer
FULL_K, QUICK_K = 1000, 40  # the burst is 1,000; at 300 a pass is mostly start-up
FILE_CONCURRENCY = 16
READY_S = 300.0  # a replica not ready by then fails the pass
WAIT_S = 600.0  # a burst not drained by then fails the pass
RECORD_S = 120.0  # how long the revokes' audit events may take to be recorded after the calls
TARGET = 1.7
PROVIDER_BOUND = 2  # max_concurrency of the provider-bound configuration (calls per replica)
CONFIGS = {"cpu": None, "provider": PROVIDER_BOUND}  # name -> max_concurrency (None: default)


@dataclass
class Call:
    action: str
    activation_id: str
    arrived: float  # wall clock (time.time()) when the call arrived
    expires_at: float | None


class SlowHook:
    """The user's IAM system: checks the signature, takes 50 ms, answers 200."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.calls: list[Call] = []
        self.bad_signatures = 0
        self.port = _free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pim"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/pim", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def of(self, action: str) -> list[Call]:
        return [c for c in self.calls if c.action == action]

    async def _receive(self, request: web.Request) -> web.Response:
        arrived = time.time()
        raw = await request.read()
        expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Pimbot-Signature", ""), expected):
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        body = json.loads(raw)
        ends = body.get("expires_at")
        self.calls.append(Call(str(body["action"]), str(body["activation_id"]), arrived,
                               datetime.fromisoformat(ends).timestamp() if ends else None))
        await asyncio.sleep(PROVIDER_S)
        return web.json_response({"active": body["action"] == "grant"})


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    port: int
    log: Path


@dataclass
class PassResult:
    replicas: int
    activations: int
    grant_per_s: float = 0.0
    grant_drain_s: float = 0.0
    revoke_per_s: float = 0.0
    revoke_drain_s: float = 0.0
    cpu_busy: float = 0.0  # share of the machine's CPUs busy during the expiry burst
    replica_cpu_s: list[float] = field(default_factory=list)
    pg_cpu_s: float = 0.0  # this database's PostgreSQL backends, during the expiry burst
    replica_cpu_ms_per_revoke: float = 0.0
    pg_cpu_ms_per_revoke: float = 0.0
    cpu_ceiling_per_s: float = 0.0  # the most these cores allow at that CPU per revoke
    own_cores: float = 0.0  # cores the replicas and their PostgreSQL backends kept busy
    others_cores: float = 0.0  # cores everything else on the machine kept busy meanwhile
    commits_per_revoke: float = 0.0  # the database's committed transactions in the burst / K
    problems: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy_text(hook_url: str, people: int, max_concurrency: int | None = None) -> str:
    limit = f", max_concurrency: {max_concurrency}" if max_concurrency else ""
    lines = ["admins: [admin@example.com]", "providers:",
             f'  hooks: {{type: webhook, url: "{hook_url}", secret_env: {SECRET_ENV}, '
             f"timeout: 10s{limit}}}", "roles:",
             f"  {ROLE}: {{provider: hooks, grant: {{group: bench}}, max_duration: 8h, "
             "require_justification: false}", "assignments:"]
    lines += [f"  - {{user: {person(i)}, role: {ROLE}, type: eligible}}" for i in range(people)]
    return "\n".join(lines) + "\n"


def person(i: int) -> str:
    return f"user{i:05d}@example.com"


def pimbot_command() -> list[str]:
    script = Path(sys.executable).with_name("pimbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pimbot_server.cli"]


def replica_env(folder: Path, url: str, policy: Path, keys: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIMBOT_", "SLACK_", "MICROSOFT_"))}
    env.update(PIMBOT_DATABASE_URL=url, PIMBOT_POLICY=str(policy), PIMBOT_ADAPTERS="none",
               PIMBOT_HOST="127.0.0.1", PIMBOT_AUDIT_CHECKPOINT=str(folder / "checkpoints"),
               **keys)
    return env


async def start_replicas(folder: Path, env: dict[str, str], count: int) -> list[Replica]:
    replicas = []
    for i in range(count):
        port = _free_port()
        log = folder / f"replica-{i}.log"
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                *pimbot_command(), "run", cwd=folder, env={**env, "PIMBOT_PORT": str(port)},
                stdin=asyncio.subprocess.DEVNULL, stdout=handle, stderr=handle)
        replicas.append(Replica(process, port, log))
    return replicas


async def wait_ready(replicas: list[Replica]) -> None:
    deadline = time.monotonic() + READY_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for replica in replicas:
            while True:
                if replica.process.returncode is not None:
                    raise RuntimeError(f"a replica exited {replica.process.returncode}: "
                                       + replica.log.read_text(errors="replace")[-2000:])
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with http.get(f"http://127.0.0.1:{replica.port}/readyz") as answer:
                        if answer.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("a replica was not ready in time")
                await asyncio.sleep(0.2)


async def stop_replicas(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in replicas:
        try:
            await asyncio.wait_for(replica.process.wait(), 60)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def process_cpu_s(pid: int) -> float:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (float(parts[11]) + float(parts[12])) / os.sysconf("SC_CLK_TCK")


async def until(done: Any, what: str, within: float = WAIT_S) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def pg_backends(url: str) -> list[int]:
    """The pids of the PostgreSQL backends serving this database (the replicas' pools)."""
    import asyncpg

    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return [int(row[0]) for row in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]
    finally:
        await conn.close()


def ceiling(cores: int, replicas: int, replica_s: float, pg_s: float) -> float:
    """Revokes per second these cores allow at this CPU per revoke (seconds): all of them
    shared by the replicas and PostgreSQL, and one core at most for each replica's loop."""
    if replica_s <= 0:
        return float("inf")
    return min(cores / (replica_s + pg_s), replicas / replica_s)


async def pg_commits(url: str) -> int:
    """Transactions committed in this database so far (``pg_stat_database``)."""
    import asyncpg

    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return int(await conn.fetchval("SELECT xact_commit FROM pg_stat_database "
                                       "WHERE datname = current_database()"))
    finally:
        await conn.close()


def burst(calls: list[Call], due: float) -> tuple[float, float]:
    """(calls per second from the first call to the last, seconds from due to the last)."""
    times = sorted(c.arrived for c in calls)
    span = times[-1] - times[0]
    return (len(times) - 1) / span if span > 0 else float("inf"), times[-1] - due


async def file_activations(core: PimCore, count: int, start: datetime,
                           duration_s: int) -> None:
    when = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    gate = asyncio.Semaphore(FILE_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            reply = await core.handle_text(Actor(person(i)),
                                           f"activate {ROLE} at {when} for {duration_s}s")
            if not reply.ok:
                raise RuntimeError(f"activation refused: {reply.text}")

    await asyncio.gather(*(one(i) for i in range(count)))


async def one_pass(admin: str, replicas_n: int, count: int, profile: Path | None,
                   max_concurrency: int | None = None) -> PassResult:
    result = PassResult(replicas_n, count)
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = await scratch_postgres(admin, stack, prefix="pimbot_bench_replicas_")
        hook = SlowHook(secrets.token_urlsafe(24))
        await hook.start()
        stack.push_async_callback(hook.stop)
        text = policy_text(hook.url, count, max_concurrency)
        policy_file = folder / "policy.yaml"
        policy_file.write_text(text, encoding="utf-8")
        audit_key = generate_key()
        keys = {"PIMBOT_SECRET_KEY": generate_key(), "PIMBOT_AUDIT_KEY": audit_key,
                SECRET_ENV: hook.secret.decode()}
        replicas = await start_replicas(folder, replica_env(folder, url, policy_file, keys),
                                        replicas_n)
        stack.push_async_callback(stop_replicas, replicas)
        await wait_ready(replicas)
        db = Database(url, audit_keyring=AuditKeyring(load_audit_key(audit_key)))
        stack.push_async_callback(db.dispose)
        policy = parse_policy(text)
        client = PimCore(db, policy, build_providers(policy.providers,
                                                     {SECRET_ENV: hook.secret.decode()}),
                         SystemClock(), owner="bench-client")  # files requests; runs no jobs
        lead_s = 5 + count // 20  # filing takes about count / 30 s on a busy 2-core machine
        # the grant burst must be over before the expiry burst: CPU-bound grants drain at
        # several hundred per second, provider-bound ones at 40/s per replica
        duration_s = 20 + (count // 100 if max_concurrency is None else count // 20)
        start = (datetime.now(UTC) + timedelta(seconds=lead_s)).replace(microsecond=0)
        expiry = start.timestamp() + duration_s
        await file_activations(client, count, start, duration_s)
        if time.time() > start.timestamp():
            result.problems.append("filing ran past T0 (raise the lead)")
        await until(lambda: len(hook.of("grant")) >= count, "the grants")
        result.grant_per_s, result.grant_drain_s = burst(hook.of("grant"), start.timestamp())
        if max(c.arrived for c in hook.of("grant")) > expiry:
            result.problems.append("grants still running at the expiry burst")
        await asyncio.sleep(max(0.0, expiry - 1 - time.time()))
        spies = await start_profiles(profile, replicas, count) if profile else []
        cpu_before, cpu_replicas = machine_cpu(), [process_cpu_s(r.process.pid)
                                                   for r in replicas]
        window_start = time.monotonic()
        commits = await pg_commits(url)
        backends = {pid: process_cpu_s(pid) for pid in await pg_backends(url)}
        await until(lambda: len(hook.of("revoke")) >= count, "the revokes")
        cpu_after = machine_cpu()
        window_s = max(time.monotonic() - window_start, 1e-3)
        result.pg_cpu_s = round(sum(process_cpu_s(pid) - backends.get(pid, 0.0)
                                    for pid in await pg_backends(url)), 2)
        result.commits_per_revoke = (await pg_commits(url) - commits) / count
        result.cpu_busy = (cpu_after[0] - cpu_before[0]) / max(1.0, cpu_after[1]
                                                               - cpu_before[1])
        result.replica_cpu_s = [round(process_cpu_s(r.process.pid) - before, 2)
                                for r, before in zip(replicas, cpu_replicas, strict=True)]
        result.revoke_per_s, result.revoke_drain_s = burst(hook.of("revoke"), expiry)
        replica_s, pg_s = sum(result.replica_cpu_s) / count, result.pg_cpu_s / count
        cores = os.cpu_count() or 1
        result.own_cores = round((sum(result.replica_cpu_s) + result.pg_cpu_s) / window_s, 2)
        result.others_cores = round(max(0.0, result.cpu_busy * cores - result.own_cores), 2)
        result.replica_cpu_ms_per_revoke = round(replica_s * 1000, 2)
        result.pg_cpu_ms_per_revoke = round(pg_s * 1000, 2)
        result.cpu_ceiling_per_s = round(ceiling(cores, replicas_n, replica_s, pg_s), 1)
        for spy in spies:
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
            await spy.wait()
        # each outcome is recorded just after the provider answers: wait for them (a
        # shortfall is reported by the invariants)
        with contextlib.suppress(RuntimeError):
            await until_async(lambda: revoked_events(db, count), "the revokes' audit events",
                              RECORD_S)
        await asyncio.sleep(1.0)  # a duplicate from another replica would land about now
        result.problems += await invariants(hook, db, count)
    return result


def py_spy(folder: Path) -> str | None:
    """The py-spy command (``pip install py-spy``), with ``folder`` made for its output."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return spy


async def start_profiles(folder: Path | None, replicas: list[Replica],
                         count: int) -> list[asyncio.subprocess.Process]:
    """py-spy on each replica for the expiry burst, as speedscope JSON."""
    spy = py_spy(folder) if folder is not None else None
    if folder is None or spy is None:
        return []
    seconds = str(10 + count // 20)
    return [await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(r.process.pid), "--duration", seconds, "--rate", "200",
        "--format", "speedscope", "--nonblocking",
        "-o", str(folder / f"replicas{len(replicas)}-replica{i}.speedscope.json"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for i, r in enumerate(replicas)]


async def until_async(done: Any, what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not await done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def revoke_events(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEventRow).where(
            AuditEventRow.action == "grant.revoked")) or 0)


async def revoked_events(db: Database, count: int) -> bool:
    return await revoke_events(db) >= count


async def invariants(hook: SlowHook, db: Database, count: int) -> list[str]:
    problems = []
    grants = Counter(c.activation_id for c in hook.of("grant"))
    revokes = Counter(c.activation_id for c in hook.of("revoke"))
    if len(grants) != count or any(n != 1 for n in grants.values()):
        problems.append(f"grants: {len(grants)} activations, {sum(grants.values())} calls")
    if set(revokes) != set(grants) or any(n != 1 for n in revokes.values()):
        problems.append(f"revokes: {len(revokes)} activations, {sum(revokes.values())} calls")
    early = [c for c in hook.of("revoke") if c.expires_at and c.arrived < c.expires_at]
    if early:
        problems.append(f"{len(early)} revoked before their expiry")
    if hook.bad_signatures:
        problems.append(f"{hook.bad_signatures} badly signed calls")
    events = await revoke_events(db)
    if events != count:
        problems.append(f"{events} grant.revoked audit events for {count} activations")
    report = await verify_chain(db)
    if not report.ok:
        problems.append(f"audit chain: {report.problem}")
    return problems


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


FIGURES = ("grant_per_s", "grant_drain_s", "revoke_per_s", "revoke_drain_s", "cpu_busy",
           "commits_per_revoke", "pg_cpu_s", "replica_cpu_ms_per_revoke",
           "pg_cpu_ms_per_revoke", "cpu_ceiling_per_s", "own_cores", "others_cores")


def summarize(report: dict[str, Any], prefix: str, runs: dict[int, list[PassResult]]
              ) -> list[str]:
    """One configuration's medians and ratios into ``report`` (keys start with ``prefix``);
    returns its invariant problems."""
    problems: list[str] = []
    for n, results in runs.items():
        for name in FIGURES:
            report[f"{prefix}{n}r_{name}"] = round(statistics.median(getattr(r, name)
                                                                     for r in results), 3)
        report[f"{prefix}{n}r_replica_cpu_s"] = results[-1].replica_cpu_s
        problems += [f"{prefix}{n}r: {p}" for r in results for p in r.problems]
    counts = list(runs)
    base = runs[counts[0]]
    for n in counts[1:]:
        for phase in ("grant", "revoke"):
            ratios = [getattr(r, f"{phase}_per_s") / getattr(b, f"{phase}_per_s")
                      for r, b in zip(runs[n], base, strict=True)]
            report[f"{prefix}{phase}_ratio_{n}r"] = round(statistics.median(ratios), 3)
        # the most n replicas could reach at the CPU per revoke they spent, against one
        ceilings = [r.cpu_ceiling_per_s / b.revoke_per_s for r, b in zip(runs[n], base,
                                                                          strict=True)]
        report[f"{prefix}cpu_ceiling_ratio_{n}r"] = round(statistics.median(ceilings), 3)
    return problems


async def main(args: Any) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    count = int(getattr(args, "activations", None) or (QUICK_K if quick else FULL_K))
    repeat = int(getattr(args, "repeat", None) or (1 if quick else 2))
    counts = [int(n) for n in str(getattr(args, "replicas", None) or "1,2").split(",")]
    configs = str(getattr(args, "configs", None) or ",".join(CONFIGS)).split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration {unknown[0]!r}: use {', '.join(CONFIGS)}")
    profile = getattr(args, "profile", None)
    admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    report: dict[str, Any] = {"activations": count, "provider_ms": PROVIDER_S * 1000,
                              "provider_bound_max_concurrency": PROVIDER_BOUND,
                              "repeat": repeat, "cpus": os.cpu_count(), "load_before": load()}
    problem = await postgres_unreachable(admin)
    if problem is not None:
        report["postgres"] = problem
        return report
    runs: dict[str, dict[int, list[PassResult]]] = {c: {n: [] for n in counts}
                                                    for c in configs}
    for _ in range(repeat):
        for config in configs:  # interleaved, so the load drifts over every pass alike
            for n in counts:
                runs[config][n].append(await one_pass(
                    admin, n, count, Path(profile) if profile else None, CONFIGS[config]))
    problems: list[str] = []
    for config in configs:
        problems += summarize(report, "" if config == "cpu" else f"{config}_", runs[config])
    if 2 in counts and counts[0] == 1:
        parts = []
        if "cpu" in configs:
            report["meets_target_2r"] = report["revoke_ratio_2r"] >= TARGET
            parts.append(f"CPU-bound {report['revoke_ratio_2r']:.2f}x one (the cores allow "
                         f"{report['cpu_ceiling_ratio_2r']:.2f}x)")
            report["met"] = report["meets_target_2r"] and not problems
        if "provider" in configs:
            parts.append(f"provider-bound (max_concurrency {PROVIDER_BOUND}) "
                         f"{report['provider_revoke_ratio_2r']:.2f}x one")
        report["figure"] = (f"expiry burst of {count}, 50 ms provider, 2 replica processes: "
                            + "; ".join(parts))
        report["target"] = f"two PostgreSQL replicas >= {TARGET}x one (CPU-bound)"
    report["invariants"] = "ok" if not problems else "; ".join(problems)
    report["load_after"] = load()
    return report


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--activations", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--replicas", default=None, help="replica counts, e.g. 1,2,3")
    parser.add_argument("--configs", default=None, help="cpu, provider or cpu,provider")
    parser.add_argument("--profile", default=None, help="py-spy output folder")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, default=str))
