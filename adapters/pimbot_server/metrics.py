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
  the chain numbers its events 1, 2, 3 … with no gaps, so it is their count once nothing
  was purged);
- jobs due now (queued, ``due_at <= now``): a range of the same index;
- replicas alive: the ``replicas`` table (one row per running process).

Everything else is counted as it happens, in this process, at no database cost: request
transitions, approval waits and revocation lateness once their transaction has committed
(``pimbot.store.observations``), provider calls (``InstrumentedProvider``) and outbound
rate-limit waits (the ``Telemetry`` port the adapters report to). Counters and histograms are
per replica; Prometheus sums them (``sum by (…) (rate(…))``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.states import RequestState
from pimbot.ports import Clock
from pimbot.store.database import Database
from pimbot.store.observations import Figure, committed
from pimbot.store.tables import AuditEventRow, JobRow, ReplicaRow, RequestRow

JOB_STATUSES = ("queued", "failed")
LIVE_STATES = (RequestState.PENDING_APPROVAL, RequestState.APPROVED, RequestState.ACTIVE)
CACHE_SECONDS = 15.0  # the database is read at most this often, whoever scrapes
APPROVAL_BUCKETS = (30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)
PROVIDER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

__all__ = ["CACHE_SECONDS", "CONTENT_TYPE", "Metrics"]


class Metrics:
    """HTTP counters updated per request; database gauges refreshed by ``scrape``; counters
    and histograms of what happens in this process. Also the ``Telemetry`` port."""

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
        self.jobs_due = Gauge(
            "pimbot_jobs_due", "Queued jobs due now (the queue's depth of work waiting to run)",
            registry=self.registry)
        self.replicas = Gauge(
            "pimbot_replicas", "pimbot processes registered on this database",
            registry=self.registry)
        self.unauthenticated_bytes = Gauge(
            "pimbot_http_unauthenticated_body_bytes",
            "Bytes of not yet authenticated request bodies held while they are read (past "
            "the process's budget, bodies are refused 503)", registry=self.registry)
        self._counted(registry=self.registry)
        db.on_commit(self._committed)

    def watch_body_budget(self, held: Callable[[], int]) -> None:
        """Report ``held()`` (the HTTP server's unauthenticated bytes) at every scrape; set
        by the server, so the console, which has none, imports no HTTP code for it."""
        self.unauthenticated_bytes.set_function(held)

    def _counted(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "pimbot_request_transitions", "Requests moved into each state (by this replica)",
            ["state"], registry=registry)
        self.approval_wait = Histogram(
            "pimbot_approval_wait_seconds",
            "From request to its approval decision, by outcome (approved, denied, timed_out, "
            "cancelled, …)", ["outcome"], buckets=APPROVAL_BUCKETS, registry=registry)
        self.revocation_lateness = Histogram(
            "pimbot_revocation_lateness_seconds",
            "From when access should have ended to the provider's confirmed revoke",
            buckets=LATENESS_BUCKETS, registry=registry)
        self.provider_seconds = Histogram(
            "pimbot_provider_call_seconds", "Provider calls' duration, by provider and action",
            ["provider", "action"], buckets=PROVIDER_BUCKETS, registry=registry)
        self.provider_errors = Counter(
            "pimbot_provider_errors", "Provider calls that failed, by provider and action",
            ["provider", "action"], registry=registry)
        self.rate_limit_waits = Counter(
            "pimbot_outbound_rate_limit_waits", "Outbound chat calls that waited out a rate "
            "limit (HTTP 429, or pimbot's own pacing within it), by platform", ["platform"],
            registry=registry)
        self.rate_limit_seconds = Counter(
            "pimbot_outbound_rate_limit_wait_seconds", "Time spent waiting out chat platforms' "
            "rate limits, by platform", ["platform"], registry=registry)

    # -- the Telemetry port ------------------------------------------------------------------

    def http_answered(self, method: str, route: str, status: str, times: int = 1) -> None:
        """Requests answered before the app was behind the port (``Listener.count_into``),
        counted as the app counts its own."""
        self.http_requests.labels(method, route, status).inc(times)

    def provider_called(self, provider: str, action: str, seconds: float, ok: bool) -> None:
        self.provider_seconds.labels(provider, action).observe(seconds)
        if not ok:
            self.provider_errors.labels(provider, action).inc()

    def outbound_waited(self, platform: str, seconds: float) -> None:
        self.rate_limit_waits.labels(platform).inc()
        self.rate_limit_seconds.labels(platform).inc(seconds)

    def _committed(self, session: AsyncSession) -> None:
        for seen in committed(session):
            labels = dict(seen.labels)
            if seen.figure is Figure.REQUEST_MOVED:
                self.transitions.labels(labels.get("state", "")).inc(seen.value)
            elif seen.figure is Figure.APPROVAL_WAITED:
                self.approval_wait.labels(labels.get("outcome", "")).observe(seen.value)
            elif seen.figure is Figure.REVOKED_LATE:
                self.revocation_lateness.observe(seen.value)

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
        due = select(func.count()).select_from(JobRow).where(
            JobRow.status == "queued", JobRow.due_at <= now)
        replicas = select(func.count()).select_from(ReplicaRow).where(
            ReplicaRow.seen_at.is_not(None))
        async with self.db.read() as session:
            by_state = {str(k): int(v) for k, v in (await session.execute(requests)).all()}
            by_status = {str(k): int(v) for k, v in (await session.execute(jobs)).all()}
            oldest_due = (await session.execute(overdue)).scalar_one_or_none()
            head = (await session.execute(audit_head)).scalar_one_or_none()
            due_now = (await session.execute(due)).scalar_one()
            live = (await session.execute(replicas)).scalar_one()
        self.jobs_due.set(due_now)
        self.replicas.set(live)
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
