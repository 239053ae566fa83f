"""Where grants really happen: grant, expire and revoke at the provider, exactly once.

Provider calls happen outside any transaction, under a per-request lease
(``provider_busy_until``) taken in a transaction that also holds the person's *slot* for the
role (an advisory lock on PostgreSQL; the single writer on SQLite). Inside the slot, the
question "does another activation of this role by this person still hold the grant?" has one
answer at a time, so overlapping activations never revoke each other early, two replicas
never revoke twice, and a revoke never lands after a newer grant of the same slot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.states import RequestKind, RequestState
from pimbot.ports import GrantTarget
from pimbot.providers.errors import ProviderError
from pimbot.scheduling.queue import ENQUEUED_FLAG, ClaimedJob, JobStatus
from pimbot.scheduling.retry import RetryLater
from pimbot.store.tables import JobRow, RequestRow
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.eligibility import backing, end_request
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import (
    JobKind,
    notify_channels,
    notify_user,
    refresh_cards,
    schedule,
)
from pimbot.workflow.records import get_request, open_requests
from pimbot.workflow.usecases.extension import schedule_expiry

log = logging.getLogger(__name__)

PROVIDER_LEASE = timedelta(seconds=90)
ENDED = frozenset({RequestState.EXPIRED.value, RequestState.DEACTIVATED.value,
                   RequestState.REVOKED.value, RequestState.CANCELLED.value,
                   RequestState.FAILED.value})


class SlotBusy(RetryLater):
    """Another provider call for this person and role is in flight: the job waits (without
    spending an attempt) and looks again."""


def target_of(ctx: Context, row: RequestRow, starts_at: datetime | None = None,
              expires_at: datetime | None = None) -> GrantTarget:
    role = ctx.policy.roles[row.role]
    return GrantTarget(activation_id=row.id, email=row.email, role=row.role,
                       grant=dict(role.grant), starts_at=starts_at or row.granted_at
                       or row.start_at, expires_at=expires_at or row.expires_at)


def channels_of(ctx: Context, row: RequestRow) -> tuple[str, ...]:
    role = ctx.policy.roles.get(row.role)
    return role.notify if role else ()


async def _slot(ctx: Context, session: AsyncSession, row: RequestRow) -> list[RequestRow]:
    """Lock this person's slot for the role; return the slot's other live requests."""
    await ctx.db.lock_key(session, f"slot:{row.email}:{row.role}")
    others = await open_requests(session, email=row.email, role=row.role,
                                 states=frozenset({RequestState.ACTIVE, RequestState.APPROVED}))
    return [r for r in others if r.id != row.id and r.kind != RequestKind.EXTENSION.value]


def _busy(row: RequestRow, now: datetime) -> bool:
    return row.provider_busy_until is not None and row.provider_busy_until > now


# -- grant -------------------------------------------------------------------------------------


async def grant(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.APPROVED.value or row.role not in ctx.policy.roles:
            if job.attempts > 0 and row.state in ENDED and row.revoked_at is None:
                # An earlier attempt failed ambiguously (it may have been applied) and the
                # request has ended since: make sure nothing is left at the provider.
                await schedule(session, JobKind.REVOKE, now, dedupe_key=f"revoke:{row.id}",
                               request_id=row.id)
            return
        if _busy(row, now):
            raise SlotBusy(row.id)
        revoking = [r for r in await _ended_in_flight(ctx, session, row) if _busy(r, now)]
        if revoking:
            raise SlotBusy(f"{row.id}: revoke of {revoking[0].id} in flight")
        still_backed, cap = await backing(session, row, now)
        if not still_backed:
            await end_request(ctx, session, row, now, "no longer eligible")
            return
        row.provider_busy_until = now + PROVIDER_LEASE
    expires = _expiry(row, now)
    if cap is not None and (expires is None or cap < expires):
        expires = cap  # access never outlasts the eligibility behind it
    try:
        ref = await ctx.provider(ctx.policy.roles[row.role]).grant(
            target_of(ctx, row, now, expires))
    except Exception as exc:
        await _release(ctx, row.id, retry_now=False)
        final = isinstance(exc, ProviderError) and not exc.retryable
        if final or job.attempts + 1 >= job.max_attempts:
            await _grant_failed(ctx, row.id, f"{type(exc).__name__}: {exc}"[:300])
            return
        raise
    await _granted(ctx, row.id, ref, expires)


async def _ended_in_flight(ctx: Context, session: AsyncSession,
                           row: RequestRow) -> list[RequestRow]:
    await ctx.db.lock_key(session, f"slot:{row.email}:{row.role}")
    ended = await open_requests(session, email=row.email, role=row.role,
                                states=frozenset(RequestState(s) for s in ENDED))
    return [r for r in ended if r.revoked_at is None and r.id != row.id]


def _expiry(row: RequestRow, now: datetime) -> datetime | None:
    if row.kind == RequestKind.ASSIGNMENT.value:
        return row.expires_at  # an assignment ends at its own end date
    return now + timedelta(seconds=row.duration_s or 0)


async def _granted(ctx: Context, request_id: str, ref: str | None,
                   expires: datetime | None) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        row.provider_busy_until = None
        if row.state != RequestState.APPROVED.value:
            row.grant_ref = ref  # the revoke needs it
            # Cancelled while the grant was in flight: take it back.
            await schedule(session, JobKind.REVOKE, now, dedupe_key=f"revoke:{row.id}",
                           request_id=row.id)
            return
        move(row, RequestState.ACTIVE, granted_at=now, expires_at=expires, grant_ref=ref)
        await session.flush()
        await record(ctx, session, "pimbot", "grant.applied", row.role, request=row.id,
                     user=row.email, expires_at=expires.isoformat() if expires else None)
        await schedule_expiry(ctx, session, row)
        await notify_user(session, now, row.email, View.REQUESTER, row.id)
        if row.kind != RequestKind.BREAKGLASS.value:
            await notify_channels(session, now, channels_of(ctx, row), View.NOTICE, row.id,
                                  "activated")
        await refresh_cards(session, now, row.id)


async def _grant_failed(ctx: Context, request_id: str, reason: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.state != RequestState.APPROVED.value:
            if row.state in ENDED:  # ended during the attempts, which may have applied it
                await schedule(session, JobKind.REVOKE, now, dedupe_key=f"revoke:{row.id}",
                               request_id=row.id)
            return
        move(row, RequestState.FAILED, failure=reason, ended_at=now)
        await session.flush()
        await record(ctx, session, "pimbot", "grant.failed", row.role, "failed",
                     request=row.id, user=row.email, error=reason)
        await notify_user(session, now, row.email, View.REQUESTER, row.id)
        await notify_channels(session, now, channels_of(ctx, row), View.NOTICE, row.id,
                              "failed")
        await refresh_cards(session, now, row.id)
        # The provider may have applied part of it: make sure nothing is left behind.
        await schedule(session, JobKind.REVOKE, now, dedupe_key=f"revoke:{row.id}",
                       request_id=row.id)


# -- expire and revoke ---------------------------------------------------------------------------


async def expire(ctx: Context, job: ClaimedJob) -> None:
    """End an activation at its time and revoke at once, in this job.

    The expiry transaction takes the provider lease and writes a revoke job due when the
    lease ends: the safety net if this process dies before the provider confirms.
    """
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.ACTIVE.value or row.expires_at is None:
            return
        if row.expires_at > now:
            return  # extended since this job was written; a newer job exists
        held_by = _holder(await _slot(ctx, session, row), now)
        move(row, RequestState.EXPIRED, ended_at=now, provider_busy_until=now + PROVIDER_LEASE)
        await session.flush()
        await record(ctx, session, "pimbot", "request.expired", row.role, request=row.id,
                     user=row.email)
        await schedule(session, JobKind.REVOKE, now + PROVIDER_LEASE,
                       dedupe_key=f"revoke:{row.id}", request_id=row.id)
        await notify_channels(session, now, channels_of(ctx, row), View.NOTICE, row.id,
                              "ended")
        await refresh_cards(session, now, row.id)
    await _revoke_leased(ctx, row, held_by, attempts=None)


def _holder(others: list[RequestRow], now: datetime) -> str | None:
    """An active activation, or one whose grant is in flight, keeps the grant."""
    for other in others:
        if other.state == RequestState.ACTIVE.value or _busy(other, now):
            return other.id
    return None


async def revoke(ctx: Context, job: ClaimedJob) -> None:
    """The revoke job: take the lease, then revoke unless another activation holds it."""
    claimed = await _claim_revoke(ctx, job.payload["request_id"])
    if claimed is None:
        return
    if claimed == "busy":
        raise SlotBusy(job.payload["request_id"])
    row, held_by = claimed
    await _revoke_leased(ctx, row, held_by, job.attempts)


async def _claim_revoke(ctx: Context, request_id: str
                        ) -> tuple[RequestRow, str | None] | Literal["busy"] | None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.revoked_at is not None or row.role not in ctx.policy.roles:
            return None
        if row.state not in ENDED:
            return None  # nothing ended (re-enqueued by mistake): never revoke a live grant
        if _busy(row, now):
            return "busy"
        held_by = _holder(await _slot(ctx, session, row), now)
        row.provider_busy_until = now + PROVIDER_LEASE  # compare-and-set on the version
    return row, held_by


async def _revoke_leased(ctx: Context, row: RequestRow, held_by: str | None,
                         attempts: int | None) -> None:
    """Call the provider while holding the lease. ``attempts`` is the revoke job's failure
    count (alerts on the first and every tenth failure); None for the attempt made by the
    expiry itself, whose failure hands over to the revoke job at once."""
    if held_by is None:
        try:
            await ctx.provider(ctx.policy.roles[row.role]).revoke(target_of(ctx, row),
                                                                   row.grant_ref)
        except Exception as exc:
            await _release(ctx, row.id, retry_now=attempts is None)
            if attempts is None:
                log.warning("revoke of %s failed; the revoke job retries: %s", row.id,
                            type(exc).__name__)
                return
            if attempts % 10 == 0:
                await _revoke_failing(ctx, row.id, f"{type(exc).__name__}: {exc}"[:300])
            raise
    await _revoked(ctx, row.id, held_by)


async def _release(ctx: Context, request_id: str, *, retry_now: bool) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        row.provider_busy_until = None
        if retry_now:
            await session.execute(update(JobRow).where(
                JobRow.dedupe_key == f"revoke:{request_id}",
                JobRow.status == JobStatus.QUEUED.value).values(due_at=now))
            session.info[ENQUEUED_FLAG] = True  # wake the worker


async def _revoke_failing(ctx: Context, request_id: str, reason: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        row.failure = reason
        await session.flush()
        await record(ctx, session, "pimbot", "revoke.failing", row.role, "failed",
                     request=row.id, user=row.email, error=reason)
        await notify_channels(session, now, channels_of(ctx, row), View.NOTICE, row.id,
                              "revoke_failing")


async def _revoked(ctx: Context, request_id: str, held_by: str | None) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.revoked_at is not None:
            return
        row.revoked_at = now
        row.provider_busy_until = None
        await session.flush()
        if held_by:
            await record(ctx, session, "pimbot", "grant.kept", row.role, request=row.id,
                         user=row.email, held_by=held_by)
        else:
            await record(ctx, session, "pimbot", "grant.revoked", row.role, request=row.id,
                         user=row.email)
        if row.state != RequestState.FAILED.value:
            await notify_user(session, now, row.email, View.REQUESTER, row.id)
        await refresh_cards(session, now, row.id)
