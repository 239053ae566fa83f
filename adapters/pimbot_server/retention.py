"""The audit retention pass of ``pimbot run``: at start and every six hours, purge audit
events older than ``PIMBOT_AUDIT_RETENTION`` (default 400 days) behind a floor that keeps the
rest verifiable (``pimbot.store.audit_retention``). Replicas may all run it: the floor only
moves forward under the chain lock, so the second pass finds nothing to do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from pimbot.ports import Clock
from pimbot.store.audit_retention import FloorProblem, Purge, purge_before
from pimbot.store.database import Database

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 6 * 3600.0


class RetentionTask:
    def __init__(self, db: Database, days: int, clock: Clock, *,
                 interval: float = INTERVAL_SECONDS) -> None:
        self.db, self.days, self.clock, self.interval = db, days, clock, interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Purge | None:
        now = self.clock.now()
        try:
            purge = await purge_before(self.db, now - timedelta(days=self.days), now)
        except FloorProblem as exc:
            log.error("audit retention: nothing purged: %s; run `pimbot audit verify`", exc)
            return None
        if purge.deleted:
            log.info("audit retention: purged %d event(s) older than %d days (the log now "
                     "starts after event %d)", purge.deleted, self.days, purge.through_seq)
        return purge

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-retention")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # the database is away: the next pass tries again
                log.warning("audit retention pass failed; trying again in %.0fs",
                            self.interval, exc_info=log.isEnabledFor(logging.DEBUG))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
