"""The expiry job of an active request, and the reminder before it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.tables import RequestRow
from pimbot.workflow.context import Context
from pimbot.workflow.notices.outbox import JobKind, PendingJobs


async def schedule_expiry(ctx: Context, session: AsyncSession, row: RequestRow) -> None:
    """The expiry job and the reminder before it (keys carry the time: extensions add new)."""
    jobs = PendingJobs()
    expiry_jobs(ctx, jobs, row)
    await jobs.write(session)


def expiry_jobs(ctx: Context, jobs: PendingJobs, row: RequestRow) -> None:
    """``schedule_expiry`` into a batch's outbox."""
    if row.expires_at is None:
        return
    stamp = int(row.expires_at.timestamp())
    jobs.schedule(JobKind.EXPIRE, row.expires_at, dedupe_key=f"expire:{row.id}:{stamp}",
                  request_id=row.id)
    role = ctx.policy.roles.get(row.role)
    if role is not None and role.expiry_reminder is not None and row.granted_at is not None:
        remind_at = row.expires_at - role.expiry_reminder
        if remind_at > ctx.clock.now():
            jobs.schedule(JobKind.REMIND_EXPIRY, remind_at,
                          dedupe_key=f"remind:{row.id}:{stamp}", request_id=row.id,
                          expires_at=row.expires_at.isoformat())
