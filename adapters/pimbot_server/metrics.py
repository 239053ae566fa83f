"""Prometheus metrics: one registry per HTTP app, gauges read from the database at scrape."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import func, select

from pimbot.domain.states import RequestState
from pimbot.ports import Clock
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, JobRow, RequestRow

JOB_STATUSES = ("queued", "failed")

__all__ = ["CONTENT_TYPE", "Metrics"]


class Metrics:
    """HTTP counters updated per request; database gauges refreshed by ``scrape``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "pimbot_http_requests",
            "HTTP requests served, by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.requests = Gauge(
            "pimbot_requests", "Activation requests by state", ["state"], registry=self.registry
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
            "pimbot_audit_events", "Events in the audit log", registry=self.registry
        )

    async def scrape(self) -> bytes:
        """Read the gauges from the database and render the exposition text."""
        await self._refresh()
        return bytes(generate_latest(self.registry))

    async def _refresh(self) -> None:
        now = self.clock.now()
        requests = select(RequestRow.state, func.count()).group_by(RequestRow.state)
        jobs = (
            select(JobRow.status, func.count())
            .where(JobRow.status.in_(JOB_STATUSES))
            .group_by(JobRow.status)
        )
        overdue = select(func.min(JobRow.due_at)).where(
            JobRow.status == "queued", JobRow.due_at <= now
        )
        audit = select(func.count()).select_from(AuditEventRow)
        async with self.db.read() as session:
            by_state: dict[str, int] = dict((await session.execute(requests)).tuples().all())
            by_status: dict[str, int] = dict((await session.execute(jobs)).tuples().all())
            oldest_due = (await session.execute(overdue)).scalar_one_or_none()
            audit_count = (await session.execute(audit)).scalar_one()
        for state in RequestState:
            self.requests.labels(state=state.value).set(by_state.get(state.value, 0))
        for status in JOB_STATUSES:
            self.jobs.labels(status=status).set(by_status.get(status, 0))
        self.oldest_overdue.set(_age_seconds(now, oldest_due))
        self.audit_events.set(audit_count)


def _age_seconds(now: datetime, due: datetime | None) -> float:
    if due is None:
        return 0.0
    if due.tzinfo is None:  # defensive: aggregate results are stored UTC
        due = due.replace(tzinfo=UTC)
    return max(0.0, (now - due).total_seconds())
