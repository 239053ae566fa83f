"""The composition root: settings → database → policy → providers → MFA → core → adapters.

``build_runtime`` wires the core from settings (used by ``pimbot run`` and by CLI commands
that need the policy or the database); ``serve`` is ``pimbot run``: it starts the adapters,
the HTTP listener, the worker and the audit checkpoint writer, and stops them all on SIGINT /
SIGTERM or, for the console, at the end of input. A stop is graceful: the HTTP listener and
the adapters stop taking work, the worker stops claiming and lets the jobs in flight finish,
every lease this process still holds is released (the other replicas take over at once),
and the last audit checkpoint is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pimbot import heap
from pimbot.domain.model import Policy
from pimbot.oncall import build_oncall_sources
from pimbot.policy import bundled_example_path, load_policy, resolve_policy_path
from pimbot.policy.plan import apply_policy, format_plan
from pimbot.ports import Clock, Provider, SystemClock
from pimbot.providers import build_providers
from pimbot.providers.instrumented import instrumented
from pimbot.store.database import Database
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_console.app import ConsoleAdapter
from pimbot_console.gateway import Screen
from pimbot_server.checkpoints import SERVER_DEFAULT, CheckpointWriter, checkpoint_store
from pimbot_server.console_output import LinesWhileOpen, StdoutWriter
from pimbot_server.metrics import Metrics
from pimbot_server.offloop import in_thread
from pimbot_server.pipes import EXIT_PIPE
from pimbot_server.policy_guard import refuse_blank, refuse_example_over_real, refuse_wiping
from pimbot_server.retention import RetentionTask
from pimbot_server.settings import AdapterName, Settings, teams_left_off
from pimbot_server.startup import Phase, StartupProgress
from pimbot_server.stopping import stop_on_signals, unless_stopped
from pimbot_server.storage import audit_keyring, reaching, secret_box, secret_key

if TYPE_CHECKING:  # imported when a run serves HTTP or mounts Slack / Teams (not the console)
    from pimbot_server.listener import Listener
    from pimbot_server.mounting import MountedAdapter

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything ``pimbot run`` built, closed in reverse order by ``close``."""

    settings: Settings
    db: Database
    policy: Policy
    providers: dict[str, Provider]
    core: PimCore
    clock: Clock
    metrics: Metrics
    adapters: list[MountedAdapter] = field(default_factory=list)
    policy_path: Path | None = None

    async def close(self) -> None:
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        for source in self.core.ctx.oncall.values():
            with contextlib.suppress(Exception):
                await source.close()
        await self.db.dispose()


async def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    """Database (migrated) → policy (applied) → providers → MFA → PimCore."""
    runtime = await compose_runtime(settings, clock)
    try:
        await prepare(runtime)
    except BaseException:
        await runtime.close()
        raise
    return runtime


async def compose_runtime(settings: Settings, clock: Clock | None = None,
                          progress: StartupProgress | None = None) -> Runtime:
    """Build everything without touching the database: keys, the policy (loaded and
    validated in a thread: the event loop keeps serving ``/healthz``), providers, MFA and the
    core. ``prepare`` then migrates and applies."""
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    try:
        secret = secret_key(settings, db)  # refuse early, before touching the database
        if not settings.secret_key and db.sqlite_path is not None:
            log.info("PIMBOT_SECRET_KEY is not set: serving with the development key file "
                     "beside %s", db.sqlite_path)
        box = secret_box(settings, db, secret)
        db.audit_keyring = audit_keyring(settings, db, secret)
        path = resolve_policy_path(settings.policy_file, Path.cwd())
        if path == bundled_example_path():
            log.warning("policy: %s, the bundled example (PIMBOT_POLICY is not set and there "
                        "is no ./pimbot.yaml; copy it there to make it yours)", path)
        if progress is not None:
            progress.enter(Phase.LOADING)
        policy = await in_thread(functools.partial(load_policy, path), "pimbot-policy")
        refuse_blank(path, policy)
        metrics = Metrics(db, clock)
        providers = instrumented(build_providers(policy.providers, settings.env, clock=clock),
                                 metrics)
    except BaseException:
        await db.dispose()
        raise
    mfa = MfaService(db, box, clock)
    owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
    core = PimCore(db, policy, providers, clock, mfa=mfa, owner=owner, telemetry=metrics,
                   oncall=build_oncall_sources(policy.oncall, settings.env))
    return Runtime(settings, db, policy, providers, core, clock, metrics, policy_path=path)


async def prepare(runtime: Runtime, progress: StartupProgress | None = None) -> None:
    """Migrate the schema and apply the policy, one replica at a time."""
    progress = progress or StartupProgress()
    progress.enter(Phase.WAITING)
    async with reaching(runtime.db), runtime.db.startup_lock():  # replicas: one at a time
        progress.enter(Phase.MIGRATING)
        await runtime.db.upgrade()
        progress.enter(Phase.APPLYING)
        await refuse_wiping(runtime.db, runtime.policy, runtime.policy_path)
        await refuse_example_over_real(runtime.db, runtime.policy, runtime.policy_path)
        changes = await apply_policy(runtime.db, runtime.policy, runtime.clock)
    log.info("policy %s applied:\n%s", runtime.policy_path, format_plan(changes))
    progress.enter(Phase.CATCHING_UP)


def console_actor(policy: Policy) -> str:
    """Whom the console acts as at first: the first admin in the policy."""
    people = policy.admins or policy.people()
    return people[0] if people else "admin@example.com"


async def serve(settings: Settings, listener: Listener | None = None,
                stopping: asyncio.Event | None = None) -> int:
    """``pimbot run``: run until SIGINT / SIGTERM, or until the console's input ends.

    The HTTP listener comes first (``pimbot_server.launch`` binds it before this module is
    even imported; given none, this binds it now): ``/healthz`` answers at once, ``/readyz``
    and the chat routes say the policy is not applied yet. Then the policy is read (off the
    event loop), the core composed and put behind the listener, the schema migrated, the
    policy applied and the core started (``pimbot_server.startup``)."""
    with contextlib.ExitStack() as signals:
        if stopping is None:
            stopping = asyncio.Event()
            signals.enter_context(stop_on_signals(stopping))
        if listener is None and settings.needs_http:
            from pimbot_server.listener import Listener

            listener = Listener(StartupProgress())
            await listener.start(settings.host, settings.port)
        try:
            return await _serve(settings, listener, stopping)
        finally:
            if listener is not None:
                await listener.stop()


async def _serve(settings: Settings, listener: Listener | None, stopping: asyncio.Event) -> int:
    progress = listener.progress if listener is not None else StartupProgress()
    try:
        composed = await unless_stopped(compose_runtime(settings, progress=progress), stopping)
        runtime = composed.result() if composed is not None else None
    except BaseException:
        progress.enter(Phase.FAILED)
        raise
    if runtime is None:
        log.info("stopping: signal received during start-up")
        return 0
    if listener is not None:  # what it answered during the start is counted from now on
        listener.count_into(runtime.metrics.http_answered)
    core = runtime.core
    console: ConsoleAdapter | None = None
    output: StdoutWriter | None = None
    background = _Background(runtime, settings)
    reason = teams_left_off(settings.env, settings.adapters)
    if reason:
        log.warning(reason)
    try:
        for name in settings.adapters:
            if name in (AdapterName.SLACK, AdapterName.TEAMS):
                from pimbot_server.mounting import import_adapter, load_adapter

                await in_thread(functools.partial(import_adapter, name))  # slack_bolt, botbuilder
                runtime.adapters.append(load_adapter(name, settings.env, core))
        if settings.has_console:
            output = StdoutWriter()
            console = ConsoleAdapter(core, console_actor(runtime.policy), Screen(output))
            core.add_gateway(console.gateway)
        if listener is not None:
            from pimbot_server.http import build_http_app

            await listener.serve(build_http_app(
                core, runtime.adapters, metrics_token=settings.metrics_token,
                metrics=runtime.metrics, startup=progress))
        if await _started(_start(runtime, background, progress), stopping):
            await _run_until_done(console, core, stopping, output)
    except BaseException:
        if not progress.policy_applied:
            progress.enter(Phase.FAILED)
        raise
    finally:
        await background.stop()
        await _shut_down(runtime, listener, background.checkpoints)
    return EXIT_PIPE if output is not None and output.closed.is_set() else 0


@dataclass
class _Background:
    """The audit checkpoint writer and the retention task, stopped only if started."""

    runtime: Runtime
    settings: Settings
    checkpoints: CheckpointWriter | None = None
    retention: RetentionTask | None = None

    async def start(self) -> None:
        checkpoints = _checkpoint_writer(self.runtime)
        if checkpoints is not None:
            await checkpoints.start()
            self.checkpoints = checkpoints
        days = self.settings.audit_retention_days
        if days:
            self.retention = RetentionTask(self.runtime.db, days, self.runtime.clock)
            self.retention.start()

    async def stop(self) -> None:
        if self.retention is not None:
            await self.retention.stop()


async def _start(runtime: Runtime, background: _Background, progress: StartupProgress) -> None:
    """Migrate, apply the policy, start the core (overdue jobs, reconciliation, the worker
    loop), the audit checkpoints and retention, then the adapters' outbound connections."""
    try:
        await prepare(runtime, progress)
        heap.settle()  # what lives as long as the process is never scanned again
        await runtime.core.start()
        await background.start()
        for adapter in runtime.adapters:
            await adapter.start()
    except asyncio.CancelledError:
        raise  # a signal during the start: not a failure
    except BaseException:
        progress.enter(Phase.FAILED)
        raise
    progress.enter(Phase.RUNNING)


async def _started(start: Coroutine[Any, Any, None], stopping: asyncio.Event) -> bool:
    """Run the start while the listener serves; False when a signal came first (the start is
    cancelled: the policy transaction rolls back). A failed start raises its error."""
    started = await unless_stopped(start, stopping)
    if started is None:
        log.info("stopping: signal received during start-up")
        return False
    started.result()
    return True


async def _run_until_done(console: ConsoleAdapter | None, core: PimCore,
                          stopping: asyncio.Event, output: StdoutWriter | None) -> None:
    """Wait for a signal; with the console, for the end of its input or of its output (then
    drain the jobs)."""
    if console is None or output is None:
        await stopping.wait()
        log.info("stopping: signal received")
        return
    session = asyncio.create_task(console.run(LinesWhileOpen(output)))
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({session, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if not session.done():
        session.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await session
    await core.drain()


def _checkpoint_writer(runtime: Runtime) -> CheckpointWriter | None:
    store = checkpoint_store(runtime.settings, runtime.db)
    if store is None:
        log.info("in-memory SQLite: no audit checkpoints are written")
        return None
    if runtime.settings.audit_checkpoint is None and not runtime.db.is_sqlite:
        log.warning("PIMBOT_AUDIT_CHECKPOINT is not set: audit checkpoints go to ./%s; keep "
                    "them where a database admin cannot write", SERVER_DEFAULT)
    return CheckpointWriter(runtime.db, store, runtime.clock)


async def _shut_down(
    runtime: Runtime, listener: Listener | None, checkpoints: CheckpointWriter | None
) -> None:
    if listener is not None:
        await listener.stop()
    for adapter in reversed(runtime.adapters):
        try:
            await adapter.stop()
        except Exception:
            log.exception("%s did not stop cleanly", type(adapter).__name__)
    await runtime.core.stop()
    if checkpoints is not None:
        await checkpoints.stop()
    await runtime.close()
