"""Prometheus metrics: one registry per HTTP app; database figures cheap to read and cached.

A scrape never counts a whole table. The database figures are four index reads, taken at most
once per ``CACHE_SECONDS`` however often (or however many scrapers at once) ``/metrics`` is
asked; scrapes in between are answered from the last reading:

- requests in a live state (pending approval, approved, active): ``state IN (…)`` on the
  index of ``requests.state``, so the cost follows what is open now, not all history (ended
  requests are not counted: their number only grows, and the audit log has each one);
- jobs queued or given up: ``status IN (…)`` on the ``(status, due_at)`` index (finished jobs,
  the bulk of the table, are never read);
- the oldest overdue job: one seek on the same index;
- audit events: the chain's head sequence number (``max(seq)``, one seek on the primary key;
  the chain numbers its events 1, 2, 3 … with no gaps, so it is their count).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import func, select

from pimbot.domain.states import RequestState
from pimbot.ports import Clock
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, JobRow, RequestRow

JOB_STATUSES = ("queued", "failed")
LIVE_STATES = (RequestState.PENDING_APPROVAL, RequestState.APPROVED, RequestState.ACTIVE)
CACHE_SECONDS = 15.0  # the database is read at most this often, whoever scrapes

__all__ = ["CACHE_SECONDS", "CONTENT_TYPE", "Metrics"]


class Metrics:
    """HTTP counters updated per request; database gauges refreshed by ``scrape``."""

    def __init__(self, db: Database, clock: Clock, *, cache_seconds: float = CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._read_at: float | None = None
        self._reading = asyncio.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "pimbot_http_requests",
            "HTTP requests served, by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.requests = Gauge(
            "pimbot_requests",
            "Activation requests in a live state (pending_approval, approved, active)",
            ["state"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "pimbot_jobs",
            "Scheduled jobs waiting or given up, by status",
            ["status"],
            registry=self.registry,
        )
        self.oldest_overdue = Gauge(
            "pimbot_oldest_overdue_job_age_seconds",
            "How long the oldest queued job has been due (0 when none is overdue)",
            registry=self.registry,
        )
        self.audit_events = Gauge(
            "pimbot_audit_events",
            "Events in the audit log (the chain's head sequence number)",
            registry=self.registry,
        )

    async def scrape(self) -> bytes:
        """The exposition text, with the database figures at most ``cache_seconds`` old."""
        async with self._reading:  # concurrent scrapes share one reading
            if self._read_at is None or self._monotonic() - self._read_at >= self.cache_seconds:
                await self._refresh()
                self._read_at = self._monotonic()
        return bytes(generate_latest(self.registry))

    async def _refresh(self) -> None:
        now = self.clock.now()
        requests = (
            select(RequestRow.state, func.count())
            .where(RequestRow.state.in_([s.value for s in LIVE_STATES]))
            .group_by(RequestRow.state)
        )
        jobs = (
            select(JobRow.status, func.count())
            .where(JobRow.status.in_(JOB_STATUSES))
            .group_by(JobRow.status)
        )
        overdue = select(func.min(JobRow.due_at)).where(
            JobRow.status == "queued", JobRow.due_at <= now
        )
        audit_head = select(func.max(AuditEventRow.seq))
        async with self.db.read() as session:
            by_state = {str(k): int(v) for k, v in (await session.execute(requests)).all()}
            by_status = {str(k): int(v) for k, v in (await session.execute(jobs)).all()}
            oldest_due = (await session.execute(overdue)).scalar_one_or_none()
            head = (await session.execute(audit_head)).scalar_one_or_none()
        for state in LIVE_STATES:
            self.requests.labels(state=state.value).set(by_state.get(state.value, 0))
        for status in JOB_STATUSES:
            self.jobs.labels(status=status).set(by_status.get(status, 0))
        self.oldest_overdue.set(_age_seconds(now, oldest_due))
        self.audit_events.set(head or 0)


def _age_seconds(now: datetime, due: datetime | None) -> float:
    if due is None:
        return 0.0
    if due.tzinfo is None:  # defensive: aggregate results are stored UTC
        due = due.replace(tzinfo=UTC)
    return max(0.0, (now - due).total_seconds())
