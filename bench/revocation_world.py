"""What the revocation benchmarks share: a 50 ms webhook receiver over real HTTP, a pimbot
with N active grants expiring when the benchmark says, and the checks every run must pass.

The receiver (a local aiohttp server) verifies each request's signature, notes when it
*arrived* (the revoke call time compared with ``expires_at``: none may be early), sleeps
``PROVIDER_LATENCY_S`` and answers 200. The active grants are written as they are left by a
grant (request ``active``, grant record ``granted``, the expiry job and its reminder), in
bulk, so that 10,000 of them take seconds rather than the turns' minutes; the activation
turns themselves are measured by ``bench_grants``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import insert

from pimbot import heap
from pimbot.domain.ids import new_id
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.providers.registry import build_providers
from pimbot.scheduling.queue import NewJob, enqueue_many
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.testing.fakes import RecordingChatGateway
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres
from pimbot.workflow.core import PimCore
from pimbot.workflow.notices.outbox import MAX_ATTEMPTS, PRIORITY, JobKind

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ROLE = "bench-role"
PROVIDER = "hook"
SECRET_ENV = "PIMBOT_BENCH_HOOK_SECRET"
SECRET = "bench-secret-" + "x" * 24
PROVIDER_LATENCY_S = 0.05
MS = 1000.0


def person(i: int) -> str:
    return f"user{i:05d}@example.com"


def policy_text(people: int, url: str, max_concurrency: int | None = None) -> str:
    limit = f", max_concurrency: {max_concurrency}" if max_concurrency else ""
    lines = [
        "admins: [admin@example.com]",
        "providers:",
        f"  {PROVIDER}: {{type: webhook, url: '{url}', secret_env: {SECRET_ENV}{limit}}}",
        "roles:",
        f"  {ROLE}:",
        "    description: Benchmark role (no approval)",
        f"    provider: {PROVIDER}",
        "    max_duration: 4h",
        "    require_justification: false",
        "    notify: ['#bench-access']",
        "assignments:",
    ]
    lines += [f"  - {{user: {person(i)}, role: {ROLE}, type: eligible}}" for i in range(people)]
    return "\n".join(lines) + "\n"


class Receiver:
    """The provider's far end: signed requests only, 50 ms each, every arrival noted."""

    def __init__(self, latency_s: float = PROVIDER_LATENCY_S) -> None:
        self.latency_s = latency_s
        self.clock = SystemClock()
        self.arrivals: dict[str, list[tuple[str, datetime, float]]] = {}
        self.by_action: dict[str, dict[str, list[tuple[datetime, float]]]] = {}
        self.bad_signatures = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def reset(self) -> None:
        self.arrivals.clear()
        self.by_action.clear()
        self.bad_signatures = self.peak_in_flight = 0

    def of(self, action: str) -> dict[str, list[tuple[datetime, float]]]:
        """Per activation id, every arrival of ``action`` (wall clock, monotonic)."""
        return self.by_action.get(action, {})

    async def _handle(self, request: web.Request) -> web.Response:
        at, mono = self.clock.now(), time.monotonic()
        body = await request.read()
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, request.headers.get("X-Pimbot-Signature", "")):
            self.bad_signatures += 1
            return web.Response(status=401)
        payload = json.loads(body)
        self.arrivals.setdefault(payload["activation_id"], []).append(
            (payload["action"], at, mono))
        self.by_action.setdefault(payload["action"], {}).setdefault(
            payload["activation_id"], []).append((at, mono))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        return web.json_response({"active": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/pim", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/pim"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class World:
    """One pimbot (or several cores on one database) against one receiver."""

    url: str
    people: int
    receiver: Receiver
    stack: AsyncExitStack
    db: Database | None = None
    cores: list[PimCore] = field(default_factory=list)
    chat: RecordingChatGateway = field(default_factory=lambda: RecordingChatGateway("slack"))

    async def prepare(self) -> None:
        """Migrate the database and apply the policy (no core yet)."""
        clock = SystemClock()
        self.policy = parse_policy(policy_text(self.people, self.receiver.url))
        self.db = Database(self.url)
        self.stack.push_async_callback(self.db.dispose)
        await self.db.upgrade()
        await apply_policy(self.db, self.policy, clock)

    def new_core(self, owner: str) -> PimCore:
        assert self.db is not None
        providers = build_providers(self.policy.providers, {SECRET_ENV: SECRET})
        for provider in providers.values():
            closer = getattr(provider, "close", None)
            if closer is not None:
                self.stack.push_async_callback(closer)
        core = PimCore(self.db, self.policy, providers, SystemClock(), owner=owner)
        core.add_gateway(self.chat)
        return core

    async def start_core(self, owner: str = "bench") -> PimCore:
        core = self.new_core(owner)
        self.cores.append(core)
        heap.settle()  # as ``pimbot run`` does once the policy is applied
        await core.start()
        return core

    async def floor_s(self, calls: int, limit: int) -> float:
        """The provider floor: ``calls`` bare signed POSTs to the receiver, ``limit`` at a
        time (what any scheduler must wait for at that concurrency), in seconds."""
        import aiohttp

        gate = asyncio.Semaphore(limit)
        body = json.dumps({"action": "floor", "activation_id": "floor"}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        async with aiohttp.ClientSession() as http:
            async def one() -> None:
                async with gate, http.post(self.receiver.url, data=body, headers={
                        "X-Pimbot-Signature": signature}) as response:
                    await response.read()
            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(calls)))
        self.receiver.arrivals.pop("floor", None)
        self.receiver.by_action.pop("floor", None)
        return time.monotonic() - started

    async def stop_cores(self) -> None:
        for core in self.cores:
            await core.stop()
        self.cores.clear()

    async def seed(self, expiries: Sequence[datetime], chunk: int = 2000) -> list[str]:
        """Active grants, one per person, as a grant leaves them (request ``active``, record
        ``granted``, the expiry job as ``schedule_expiry`` writes it: the role has no
        reminder), written in bulk; returns the activation ids."""
        assert self.db is not None
        now = SystemClock().now()
        ids: list[str] = []
        run = new_id()  # ids unique within the run (random short ids collide at 10,000)
        for start in range(0, len(expiries), chunk):
            grants, requests, jobs = [], [], []
            for i in range(start, min(len(expiries), start + chunk)):
                rid, gid, ends = f"{run}{i:05d}", f"g{run}{i:05d}", expiries[i]
                began = min(now, ends) - timedelta(minutes=1)
                grants.append({
                    "id": gid, "email": person(i), "role": ROLE, "provider": PROVIDER,
                    "params": {}, "activation_id": rid, "state": GrantState.GRANTED.value,
                    "starts_at": began, "expires_at": ends, "created_at": began,
                    "granted_at": began, "failures": 0, "failure": ""})
                requests.append({
                    "id": rid, "kind": "activation", "email": person(i), "role": ROLE,
                    "state": "active", "version": 1,
                    "duration_s": int((ends - began).total_seconds()), "reason": "bench",
                    "requested_at": began, "start_at": began, "decided_at": began,
                    "decided_by": "pimbot", "granted_at": began, "expires_at": ends,
                    "grant_id": gid})
                jobs.append(NewJob(
                    JobKind.EXPIRE.value, {"request_id": rid}, ends,
                    f"expire:{rid}:{int(ends.timestamp())}",
                    MAX_ATTEMPTS.get(JobKind.EXPIRE, 20), PRIORITY[JobKind.EXPIRE]))
                ids.append(rid)
            async with self.db.transaction() as session:
                await session.execute(insert(GrantRow), grants)
                await session.execute(insert(RequestRow), requests)
                await enqueue_many(session, jobs)
        return ids


@dataclass
class Outcome:
    """What the receiver saw for one pass, checked."""

    lateness_s: list[float]
    timer_s: list[float]
    exactly_once: int
    duplicates: int
    misses: int
    early: int
    chain_ok: bool
    chain_events: int
    first_revoke_mono: float = math.nan
    last_revoke_mono: float = math.nan


def timers_for(expiries: Sequence[datetime]) -> list[float]:
    """The baseline: a bare ``loop.call_at`` per expiry; returns the list it fills."""
    loop = asyncio.get_running_loop()
    clock = SystemClock()
    fired: list[float] = []
    now_wall, now_loop = clock.now(), loop.time()
    for ends in expiries:
        delay = (ends - now_wall).total_seconds()
        loop.call_at(now_loop + delay, lambda e=ends: fired.append(
            (clock.now() - e).total_seconds()))
    return fired


class CpuWindow:
    """This process's CPU seconds (``time.process_time``) from an instant (the first expiry)
    until ``stop()`` (the last revoke seen): what the revokes of that window cost, beside
    the wall figures, whatever else shares the machine."""

    def __init__(self, start: datetime) -> None:
        self.started: float | None = None
        self.stopped: float | None = None
        loop = asyncio.get_running_loop()
        delay = max(0.0, (start - SystemClock().now()).total_seconds())
        loop.call_at(loop.time() + delay, self._start)

    def _start(self) -> None:
        self.started = time.process_time()

    def stop(self) -> None:
        self.stopped = time.process_time()

    def seconds(self) -> float:
        if self.started is None or self.stopped is None:
            return math.nan
        return self.stopped - self.started


async def wait_calls(receiver: Receiver, action: str, count: int, deadline_s: float) -> None:
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        if len(receiver.of(action)) >= count:
            return
        await asyncio.sleep(0.1)


async def wait_revoked(receiver: Receiver, ids: Sequence[str], deadline_s: float) -> None:
    wanted = set(ids)
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        if len(receiver.of("revoke")) >= len(wanted) and wanted <= receiver.of("revoke").keys():
            return
        await asyncio.sleep(0.1)


async def check(db: Database, receiver: Receiver, expiries: dict[str, datetime],
                timer_s: list[float]) -> Outcome:
    await asyncio.sleep(0.3)  # a duplicate would land about now
    revokes = receiver.of("revoke")
    counts = Counter({key: len(hits) for key, hits in revokes.items() if key in expiries})
    lateness = [(hits[0][0] - expiries[key]).total_seconds()
                for key, hits in revokes.items() if key in expiries]
    early = sum(1 for late in lateness if late < 0)
    report = await verify_chain(db)
    monos = [hit[1] for hits in revokes.values() for hit in hits]
    return Outcome(
        lateness_s=lateness, timer_s=list(timer_s),
        exactly_once=sum(1 for n in counts.values() if n == 1),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        misses=len(set(expiries) - set(counts)), early=early,
        chain_ok=report.ok, chain_events=report.checked,
        first_revoke_mono=min(monos) if monos else math.nan,
        last_revoke_mono=max(monos) if monos else math.nan)


def quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def lateness_report(label: str, outcome: Outcome) -> dict[str, Any]:
    pim, timer = outcome.lateness_s, outcome.timer_s
    p99, timer_p99 = quantile(pim, 0.99), quantile(timer, 0.99)
    return {
        f"{label}_p50_ms": round(statistics.median(pim) * MS, 1) if pim else math.nan,
        f"{label}_p99_ms": round(p99 * MS, 1),
        f"{label}_max_ms": round(max(pim) * MS, 1) if pim else math.nan,
        f"{label}_timer_p50_ms": round(statistics.median(timer) * MS, 2) if timer else math.nan,
        f"{label}_timer_p99_ms": round(timer_p99 * MS, 2),
        f"{label}_p99_ratio": round(p99 / timer_p99, 1) if timer_p99 > 0 else math.inf,
        f"{label}_revoked_exactly_once": outcome.exactly_once,
        f"{label}_duplicates": outcome.duplicates,
        f"{label}_misses": outcome.misses,
        f"{label}_early": outcome.early,
        f"{label}_audit_chain_ok": outcome.chain_ok,
    }


def postgres_admin_url() -> str:
    return os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES


async def backends(stack: AsyncExitStack, folder: str, only: str | None = None
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """{label: url} for SQLite and (when it answers) a scratch PostgreSQL; and problems."""
    urls: dict[str, str] = {}
    problems: dict[str, str] = {}
    if only in (None, "sqlite"):
        urls["sqlite"] = f"sqlite+aiosqlite:///{folder}/bench-{new_id()}.db"
    if only in (None, "pg"):
        admin = postgres_admin_url()
        problem = await postgres_unreachable(admin)
        if problem is None:
            urls["pg"] = await scratch_postgres(admin, stack)
        else:
            problems["postgres"] = problem
    return urls, problems


OneBackend = Callable[[str, str, argparse.Namespace, AsyncExitStack, "Receiver"],
                     Coroutine[Any, Any, dict[str, Any]]]


async def each_backend(report: dict[str, Any], args: argparse.Namespace,
                       one_backend: OneBackend) -> dict[str, Any]:
    """``report`` with ``one_backend(label, url, args, stack, receiver)``'s figures for each
    backend ``args.backend`` allows (SQLite and, when it answers, PostgreSQL), one receiver
    for all, each backend's world torn down before the next starts."""
    async with AsyncExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        receiver = Receiver()
        await receiver.start()
        stack.push_async_callback(receiver.stop)
        urls, problems = await backends(stack, folder, args.backend)
        report.update(problems)
        for label, url in urls.items():
            receiver.reset()
            async with AsyncExitStack() as inner:
                report.update(await one_backend(label, url, args, inner, receiver))
    return report


def headline(report: dict[str, Any], meets: str, figure: Callable[[str], str],
             target: str) -> None:
    """The report's ``figure``, ``target`` and ``met`` (``pimbot bench``'s summary) from the
    ``{backend}_{meets}`` flags of the backends that ran."""
    labels = [label for label in ("sqlite", "pg") if f"{label}_{meets}" in report]
    report["figure"] = ", ".join(figure(label) for label in labels)
    report["target"] = target
    report["met"] = bool(labels) and all(report[f"{label}_{meets}"] for label in labels)


def run_standalone(main: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
                   description: str | None, *, span: bool = False) -> None:
    """``python bench/bench_NAME.py [--quick] [--activations N] [--backend sqlite|pg]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--activations", type=int, default=None)
    if span:
        parser.add_argument("--span", type=float, default=None)
    parser.add_argument("--backend", choices=("sqlite", "pg"), default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, default=str))

