"""Replicas: who is running, and taking over the leases of one that died.

Every ``pimbot run`` registers a row (its owner id, where it runs, its pid) and beats every
``beat`` seconds. Another replica is dead when

- it ran in this process's pid namespace on this boot (the same host or container) and its
  pid is gone, a zombie, or this process's own pid: a process restarted after a crash takes
  over its predecessor's work at once, without waiting for a lease to run out;
- or it has not beaten for ``stale`` seconds, by the database's clock on PostgreSQL (so clock
  skew between hosts does not count) and by this host's on SQLite (one host by nature).

Reaping a dead replica, in one transaction, releases its job leases (its jobs become
claimable now), calls the hooks for leases that other layers keep (the workflow's grant
leases) and deletes its row. A replica wrongly taken for dead (stalled longer than ``stale``)
loses its leases exactly as when they expire: the fences make its late writes record nothing.
A replica that stops cleanly ``leave``s: the same release, of its own leases.

Each look at the table (at ``join`` and every beat) also counts the replicas alive: ``live``,
which the worker uses to take its share of a burst (``scheduling/sharing.py``), costs no query
of its own.

Liveness is real time, not the Clock port: it is about processes, not about when jobs are due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.scheduling.queue import ENQUEUED_FLAG
from pimbot.store.database import Database
from pimbot.store.tables import JobRow, ReplicaRow

log = logging.getLogger(__name__)

ReleaseHook = Callable[[AsyncSession, str], Awaitable[int]]  # (session, owner) -> released
BEAT_SECONDS = 2.0
STALE_SECONDS = 15.0


def pidspace() -> str:
    """This process's pid namespace on this boot ("" where /proc cannot say)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"[:200]


def process_gone(pid: int) -> bool:
    """Whether ``pid`` (in this pid namespace) is no running process: absent, or a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


class Replicas:
    """This process's row, its heartbeat, and the reaping of dead replicas."""

    def __init__(self, db: Database, owner: str, *, beat: float = BEAT_SECONDS,
                 stale: float = STALE_SECONDS) -> None:
        self.db = db
        self.owner = owner
        self.beat = beat
        self.stale = stale
        self.pidspace = pidspace()
        self.pid = os.getpid()
        self._hooks: list[ReleaseHook] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._live = 1

    def live(self) -> int:
        """How many replicas were alive at the last look (``join``, then every beat), this
        one included."""
        return self._live

    def on_release(self, hook: ReleaseHook) -> None:
        """Also call ``hook(session, owner)`` when an owner's leases are released."""
        self._hooks.append(hook)

    def _now(self) -> ColumnElement[datetime] | datetime:
        return datetime.now(UTC) if self.db.is_sqlite else func.now()

    async def join(self) -> int:
        """Register (or refresh) this process, reap the dead, and start beating. Returns
        how many dead replicas were reaped."""
        async with self.db.transaction() as session:
            row = await session.get(ReplicaRow, self.owner)
            now = datetime.now(UTC)
            if row is None:
                session.add(ReplicaRow(owner=self.owner, pidspace=self.pidspace, pid=self.pid,
                                       started_at=now, seen_at=now))
        reaped = await self.reap()
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="pimbot-replica-beat")
        return reaped

    async def leave(self) -> None:
        """Stop beating, release this process's own leases and remove its row (a clean stop:
        the others need not wait for anything)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        async with self.db.transaction() as session:
            released = await self._release(session, self.owner)
            await session.execute(delete(ReplicaRow).where(ReplicaRow.owner == self.owner))
        if released:
            log.info("released %d lease(s) held by this process at shutdown", released)

    async def beat_once(self) -> None:
        async with self.db.transaction() as session:
            result = await session.execute(update(ReplicaRow).where(
                ReplicaRow.owner == self.owner).values(seen_at=self._now()).execution_options(
                synchronize_session=False))
            if getattr(result, "rowcount", 1) == 0:  # reaped while stalled: come back
                now = datetime.now(UTC)
                log.warning("this replica was taken for dead (a stall?); registering again")
                session.add(ReplicaRow(owner=self.owner, pidspace=self.pidspace,
                                       pid=self.pid, started_at=now, seen_at=now))

    async def reap(self) -> int:
        """Release the leases of every dead replica; returns how many were reaped."""
        dead = await self._dead()
        for owner, why in dead:
            async with self.db.transaction() as session:
                gone = await session.execute(delete(ReplicaRow).where(ReplicaRow.owner == owner)
                                             .execution_options(synchronize_session=False))
                if getattr(gone, "rowcount", 1) == 0:
                    continue  # another replica reaped it first
                released = await self._release(session, owner)
            log.warning("replica %s is gone (%s): took over %d lease(s)", owner, why, released)
        return len(dead)

    async def _dead(self) -> list[tuple[str, str]]:
        cutoff: ColumnElement[datetime] | datetime
        if self.db.is_sqlite:
            cutoff = datetime.now(UTC) - timedelta(seconds=self.stale)
        else:
            cutoff = func.now() - timedelta(seconds=self.stale)
        async with self.db.read() as session:
            rows = (await session.execute(select(
                ReplicaRow.owner, ReplicaRow.pidspace, ReplicaRow.pid,
                ReplicaRow.seen_at < cutoff).where(ReplicaRow.owner != self.owner))).all()
        dead: list[tuple[str, str]] = []
        for owner, space, pid, stale in rows:
            if self.pidspace and space == self.pidspace and (
                    pid == self.pid or process_gone(pid)):
                dead.append((owner, f"its process {pid} on this host has ended"))
            elif stale:
                dead.append((owner, f"no heartbeat for {self.stale:.0f}s"))
        self._live = 1 + len(rows) - len(dead)
        return dead

    async def _release(self, session: AsyncSession, owner: str) -> int:
        result = await session.execute(update(JobRow).where(
            JobRow.lease_owner == owner, JobRow.status == "queued").values(
            lease_owner=None, lease_expires_at=None).execution_options(
            synchronize_session=False))
        released = int(getattr(result, "rowcount", 0) or 0)
        for hook in self._hooks:
            released += await hook(session, owner)
        if released:
            session.info[ENQUEUED_FLAG] = True  # wake this process's worker
        return released

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.beat)
            if self._stopping.is_set():
                return
            try:
                await self.beat_once()
                await self.reap()
            except Exception:  # the database is away: try again at the next beat
                log.warning("replica heartbeat failed; trying again in %.0fs", self.beat,
                            exc_info=log.isEnabledFor(logging.DEBUG))
