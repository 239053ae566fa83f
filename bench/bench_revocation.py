"""Revocation latency: from each activation's ``expires_at`` to the provider's ``revoke`` call.

pimbot promises "revocation within a second, exactly once, across replicas". This runs the real
``PimCore`` worker loop (``core.start()``, the real ``SystemClock``, real time) on SQLite and on
the local PostgreSQL, with one replica and with three (three ``PimCore`` instances, each with
its own ``Database``, on one PostgreSQL database). N people each activate a no-approval role for
a few seconds, staggered so the expiries fall within a few seconds after every grant is done;
a recording provider notes when ``revoke`` is called for each activation.

Baseline, same run, same event loop: a bare ``loop.call_at`` timer per activation, set (when
the grant happens) to fire at the same ``expires_at``. ``p99_ratio`` = pimbot p99 / timer p99.
Every activation must be revoked exactly once: duplicates and misses are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pimbot.domain.model import Policy
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import GrantTarget, SystemClock
from pimbot.store.database import Database
from pimbot.store.tables import JobRow
from pimbot.testing.fakes import RecordingChatGateway, RecordingProvider
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PROMISE_MS = 1000.0
ROLE = "bench-role"
GRACE_S = 15.0  # how long past the last expiry a missing revoke is waited for
FULL_N, QUICK_N = 30, 10  # --activations N overrides (200 takes minutes: see PERFORMANCE.md)
WARMUP = 5  # activations in the warm-up pass, which also times the grant phase
LEAD_FACTOR = 1.3  # lead = this x (grant-phase time per activation) x N, plus half a second


def policy_text(people: int) -> str:
    lines = [
        "admins: [admin@example.com]",
        "providers:",
        "  demo: {type: noop}",
        "roles:",
        f"  {ROLE}:",
        "    description: Benchmark role (no approval)",
        "    provider: demo",
        "    max_duration: 1h",
        "    require_justification: false",
        "assignments:",
    ]
    lines += [f"  - {{user: {person(i)}, role: {ROLE}, type: eligible}}" for i in range(people)]
    return "\n".join(lines) + "\n"


def person(i: int) -> str:
    return f"user{i:04d}@example.com"


class TimingProvider(RecordingProvider):
    """Notes each grant's expiry, arms a bare timer for it, and times every revoke."""

    def __init__(self, clock: SystemClock) -> None:
        super().__init__()
        self.clock = clock
        self.reset(0)

    def reset(self, expected: int) -> None:
        self.calls.clear()
        self.expected = expected
        self.expires: dict[str, datetime] = {}
        self.revokes: Counter[str] = Counter()
        self.pimbot_s: list[float] = []
        self.timer_s: list[float] = []
        self.last_grant_mono = 0.0
        self.first_revoke_mono = math.inf
        self.granted = asyncio.Event()
        self.revoked = asyncio.Event()

    async def grant(self, target: GrantTarget) -> str | None:
        ref = await super().grant(target)
        assert target.expires_at is not None
        self.expires[target.activation_id] = target.expires_at
        loop = asyncio.get_running_loop()
        delay = (target.expires_at - self.clock.now()).total_seconds()
        loop.call_at(loop.time() + delay, self._timer_fired, target.expires_at)
        self.last_grant_mono = time.monotonic()
        if len(self.expires) >= self.expected:
            self.granted.set()
        return ref

    def _timer_fired(self, expires_at: datetime) -> None:
        self.timer_s.append((self.clock.now() - expires_at).total_seconds())

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        now = self.clock.now()
        self.first_revoke_mono = min(self.first_revoke_mono, time.monotonic())
        await super().revoke(target, ref)
        expires = self.expires.get(target.activation_id, target.expires_at)
        if expires is not None and self.revokes[target.activation_id] == 0:
            self.pimbot_s.append((now - expires).total_seconds())
        self.revokes[target.activation_id] += 1
        if len(self.revokes) >= self.expected:
            self.revoked.set()


@dataclass
class PassResult:
    activations: int
    lead_s: int
    setup_s: float
    pimbot_s: list[float] = field(default_factory=list)
    timer_s: list[float] = field(default_factory=list)
    duplicates: int = 0
    misses: int = 0
    exactly_once: int = 0
    overlapped: bool = False
    window_s: float = 0.0  # from the first expiry to the last


async def one_pass(cores: Sequence[PimCore], provider: TimingProvider, people: range,
                   lead_s: int, spread_s: int) -> PassResult:
    """Activate once per person, expiring lead_s..lead_s+spread_s s after the pass began;
    wait for every revoke (or GRACE_S past the last expiry)."""
    provider.reset(len(people))
    started = time.monotonic()
    await activate_all(cores, people, started, lead_s, spread_s)
    await asyncio.wait_for(provider.granted.wait(), timeout=lead_s + 60)
    await until_idle(cores[0])
    result = PassResult(len(people), lead_s, time.monotonic() - started)
    last_expiry = max(provider.expires.values())
    deadline = (last_expiry - provider.clock.now()).total_seconds() + GRACE_S
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(provider.revoked.wait(), timeout=max(deadline, 1.0))
    await asyncio.sleep(0.2)  # a duplicate from another replica would land about now
    result.pimbot_s, result.timer_s = list(provider.pimbot_s), list(provider.timer_s)
    result.duplicates = sum(count - 1 for count in provider.revokes.values() if count > 1)
    result.misses = len(set(provider.expires) - set(provider.revokes))
    result.exactly_once = sum(1 for count in provider.revokes.values() if count == 1)
    result.overlapped = provider.first_revoke_mono < provider.last_grant_mono
    result.window_s = (last_expiry - min(provider.expires.values())).total_seconds()
    return result


async def activate_all(cores: Sequence[PimCore], people: range, started: float, lead_s: int,
                       spread_s: int) -> None:
    """``activate ROLE for Ns``, round-robin over the replicas. A grant follows its request
    at once, so subtracting the seconds already spent keeps every expiry in a short window."""
    for n, i in enumerate(people):
        spent = int(time.monotonic() - started)
        seconds = max(1, lead_s - spent + n % spread_s)
        core = cores[n % len(cores)]
        reply = await core.handle_text(Actor(person(i)), f"activate {ROLE} for {seconds}s")
        if not reply.ok:
            raise RuntimeError(f"activation refused: {reply.text}")


async def until_idle(core: PimCore) -> None:
    """Wait until no job is due (the grants' notifications are done, too)."""
    while True:
        async with core.db.read() as session:
            due = await session.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.status == "queued", JobRow.due_at <= core.clock.now()))
        if not due:
            return
        await asyncio.sleep(0.05)


async def run_replicas(urls: Sequence[str], people: int, quick: bool) -> PassResult:
    """Start one PimCore per URL; a small warm-up pass calibrates the lead; then measure."""
    clock = SystemClock()
    policy: Policy = parse_policy(policy_text(people + WARMUP))
    provider = TimingProvider(clock)
    chat = RecordingChatGateway()  # one shared "platform": any replica can update any card
    async with AsyncExitStack() as stack:
        cores = []
        for n, url in enumerate(urls):
            db = Database(url)
            stack.push_async_callback(db.dispose)
            if n == 0:
                await db.upgrade()
                await apply_policy(db, policy, clock)
            core = PimCore(db, policy, {"demo": provider}, clock, owner=f"bench-replica-{n}")
            core.add_gateway(chat)
            await core.start()
            stack.push_async_callback(core.stop)
            cores.append(core)
        calibration = await one_pass(cores, provider, range(people, people + WARMUP), 2, 1)
        # Every grant must be done before the first expiry: the lead covers the grant phase.
        lead = math.ceil(LEAD_FACTOR * calibration.setup_s / WARMUP * people + 0.5)
        return await one_pass(cores, provider, range(people), lead, 2 if quick else 3)


def quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(label: str, result: PassResult) -> dict[str, Any]:
    pim, timer = result.pimbot_s, result.timer_s
    pim_p99, timer_p99 = quantile(pim, 0.99), quantile(timer, 0.99)
    ms = 1000.0
    return {
        f"{label}_activations": result.activations,
        f"{label}_lead_s": result.lead_s,
        f"{label}_expiry_window_s": round(result.window_s, 2),
        f"{label}_p50_ms": round(statistics.median(pim) * ms, 2) if pim else math.nan,
        f"{label}_p99_ms": round(pim_p99 * ms, 2),
        f"{label}_max_ms": round(max(pim) * ms, 2) if pim else math.nan,
        f"{label}_timer_p50_ms": round(statistics.median(timer) * ms, 3) if timer else math.nan,
        f"{label}_timer_p99_ms": round(timer_p99 * ms, 3),
        f"{label}_p99_ratio": round(pim_p99 / timer_p99, 1) if timer_p99 > 0 else math.inf,
        f"{label}_revoked_exactly_once": result.exactly_once,
        f"{label}_duplicates": result.duplicates,
        f"{label}_misses": result.misses,
        f"{label}_grants_overlapped_expiry": result.overlapped,
    }


def postgres_admin_url() -> str:
    return os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES


async def main(args: Any) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    people = int(getattr(args, "activations", None) or (QUICK_N if quick else FULL_N))
    report: dict[str, Any] = {"activations": people, "promise": "p99 < 1000 ms, once each"}
    results: dict[str, PassResult] = {}
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite_url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        results["sqlite_1r"] = await run_replicas([sqlite_url], people, quick)
        admin = postgres_admin_url()
        problem = await postgres_unreachable(admin)
        if problem is not None:
            report["postgres"] = problem
        else:
            for replicas in (1, 3):
                url = await scratch_postgres(admin, stack)
                results[f"pg_{replicas}r"] = await run_replicas([url] * replicas, people, quick)
    for label, result in results.items():
        report.update(summarise(label, result))
    report["meets_promise"] = all(
        quantile(r.pimbot_s, 0.99) * 1000 < PROMISE_MS and not r.duplicates and not r.misses
        for r in results.values()
    )
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--activations", type=int, default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2, default=str))
