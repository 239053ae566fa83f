"""Durable job handlers: grant, expire, revoke, reminders, timeouts. Each is idempotent.

Provider calls happen outside any transaction; the state change after them is a
compare-and-set, so a job run twice (a lease lost, a retry) changes nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from pimbot.domain.states import RequestKind, RequestState
from pimbot.ports import GrantTarget
from pimbot.providers.errors import ProviderError
from pimbot.scheduling.queue import ClaimedJob
from pimbot.scheduling.retry import PermanentJobError
from pimbot.store.tables import RequestRow
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.extension import schedule_expiry
from pimbot.workflow.outbox import (
    JobKind,
    notify_approvers,
    notify_channels,
    notify_user,
    refresh_cards,
    schedule,
)
from pimbot.workflow.records import get_request, open_requests, votes_of
from pimbot.workflow.transitions import move

log = logging.getLogger(__name__)


def target_of(ctx: Context, row: RequestRow) -> GrantTarget:
    role = ctx.policy.roles[row.role]
    return GrantTarget(activation_id=row.id, email=row.email, role=row.role,
                       grant=dict(role.grant), starts_at=row.granted_at or row.start_at,
                       expires_at=row.expires_at)


def _channels(ctx: Context, row: RequestRow) -> tuple[str, ...]:
    role = ctx.policy.roles.get(row.role)
    return role.notify if role else ()


async def grant(ctx: Context, job: ClaimedJob) -> None:
    async with ctx.db.read() as session:
        row = await get_request(session, job.payload["request_id"])
    if row.state != RequestState.APPROVED.value or row.role not in ctx.policy.roles:
        return
    now = ctx.clock.now()
    expires = _expiry(row, now)
    provider = ctx.provider(ctx.policy.roles[row.role])
    try:
        ref = await provider.grant(GrantTarget(row.id, row.email, row.role,
                                               dict(ctx.policy.roles[row.role].grant), now,
                                               expires))
    except Exception as exc:
        final = isinstance(exc, ProviderError) and not exc.retryable
        if final or job.attempts + 1 >= job.max_attempts:
            await _grant_failed(ctx, row.id, f"{type(exc).__name__}: {exc}"[:300])
            return
        raise
    await _granted(ctx, row.id, ref, expires)


def _expiry(row: RequestRow, now: datetime) -> datetime | None:
    if row.kind == RequestKind.ASSIGNMENT.value:
        return row.expires_at  # an assignment ends at its own end date
    return now + timedelta(seconds=row.duration_s or 0)


async def _granted(ctx: Context, request_id: str, ref: str | None,
                   expires: datetime | None) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.state != RequestState.APPROVED.value:
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
            await notify_channels(session, now, _channels(ctx, row), View.NOTICE, row.id,
                                  "activated")
        await refresh_cards(session, now, row.id)


async def _grant_failed(ctx: Context, request_id: str, reason: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.state != RequestState.APPROVED.value:
            return
        move(row, RequestState.FAILED, failure=reason, ended_at=now)
        await session.flush()
        await record(ctx, session, "pimbot", "grant.failed", row.role, "failed",
                     request=row.id, user=row.email, error=reason)
        await notify_user(session, now, row.email, View.REQUESTER, row.id)
        await notify_channels(session, now, _channels(ctx, row), View.NOTICE, row.id, "failed")
        await refresh_cards(session, now, row.id)
        # The provider may have applied part of it: make sure nothing is left behind.
        await schedule(session, JobKind.REVOKE, now, dedupe_key=f"revoke:{row.id}",
                       request_id=row.id)


async def expire(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.ACTIVE.value or row.expires_at is None:
            return
        if row.expires_at > now:
            return  # extended since this job was written; a newer job exists
        move(row, RequestState.EXPIRED, ended_at=now)
        await session.flush()
        await record(ctx, session, "pimbot", "request.expired", row.role, request=row.id,
                     user=row.email)
        await schedule(session, JobKind.REVOKE, now, dedupe_key=f"revoke:{row.id}",
                       request_id=row.id)
        await notify_channels(session, now, _channels(ctx, row), View.NOTICE, row.id, "ended")
        await refresh_cards(session, now, row.id)
    # Revoke at once rather than one job later; the queued revoke job is the retry (it finds
    # the revoke done and stops, or tries again with backoff and alerts if this failed).
    try:
        await revoke_request(ctx, row.id, attempts=None)
    except (StaleDataError, IntegrityError):
        pass  # the revoke job took the lease first
    except Exception as exc:
        log.warning("immediate revoke of %s failed, the revoke job retries: %s", row.id,
                    type(exc).__name__)


async def revoke(ctx: Context, job: ClaimedJob) -> None:
    await revoke_request(ctx, job.payload["request_id"], attempts=job.attempts)


class RevokeInProgress(Exception):
    """Another worker is revoking this grant right now; the job looks again later."""


REVOKE_LEASE = timedelta(seconds=90)


async def revoke_request(ctx: Context, request_id: str, attempts: int | None) -> None:
    """Revoke one ended request's grant unless another activation still holds it.

    Exactly one caller at a time holds the request's revoke lease, so the immediate attempt
    made on expiry and the revoke job never call the provider twice. ``attempts`` is the
    revoke job's failure count (alerts go out on the first and every tenth failure); None
    for the immediate attempt, which never alerts and simply yields to a running revoke.
    """
    claimed = await _claim_revoke(ctx, request_id)
    if claimed is None:
        return
    if claimed == "busy":
        if attempts is None:
            return
        raise RevokeInProgress(request_id)
    row, held_by = claimed
    if held_by is None:
        try:
            await ctx.provider(ctx.policy.roles[row.role]).revoke(target_of(ctx, row),
                                                                   row.grant_ref)
        except Exception as exc:
            await _release_revoke(ctx, row.id)
            if attempts is not None and attempts % 10 == 0:
                await _revoke_failing(ctx, row.id, f"{type(exc).__name__}: {exc}"[:300])
            raise
    await _revoked(ctx, row.id, held_by)


async def _claim_revoke(ctx: Context, request_id: str
                        ) -> tuple[RequestRow, str | None] | Literal["busy"] | None:
    """Take the revoke lease: (row, held_by) if ours; "busy" if someone else's; None if
    there is nothing to revoke."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.revoked_at is not None or row.role not in ctx.policy.roles:
            return None
        if row.state in {RequestState.ACTIVE.value, RequestState.APPROVED.value}:
            return None  # nothing ended (re-enqueued by mistake): never revoke a live grant
        if row.revoking_until is not None and row.revoking_until > now:
            return "busy"
        holders = [r for r in await open_requests(session, email=row.email, role=row.role,
                                                   states=frozenset({RequestState.ACTIVE}))
                   if r.id != row.id and r.kind != RequestKind.EXTENSION.value]
        row.revoking_until = now + REVOKE_LEASE  # compare-and-set on the row's version
    return row, holders[0].id if holders else None


async def _release_revoke(ctx: Context, request_id: str) -> None:
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        row.revoking_until = None


async def _revoke_failing(ctx: Context, request_id: str, reason: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        row.failure = reason
        await session.flush()
        await record(ctx, session, "pimbot", "revoke.failing", row.role, "failed",
                     request=row.id, user=row.email, error=reason)
        await notify_channels(session, now, _channels(ctx, row), View.NOTICE, row.id,
                              "revoke_failing")


async def _revoked(ctx: Context, request_id: str, held_by: str | None) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.revoked_at is not None:
            return
        row.revoked_at = now
        row.revoking_until = None
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


async def approval_timeout(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.PENDING_APPROVAL.value:
            return
        if row.approval_due_at is not None and row.approval_due_at > now:
            return
        move(row, RequestState.TIMED_OUT, decided_at=now)
        await session.flush()
        await record(ctx, session, "pimbot", "request.timed_out", row.role, request=row.id,
                     user=row.email)
        await notify_user(session, now, row.email, View.REQUESTER, row.id)
        await refresh_cards(session, now, row.id)


async def remind_approvers(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.PENDING_APPROVAL.value:
            return
        voted = frozenset(v.approver for v in await votes_of(session, row.id))
        await notify_approvers(session, now, ctx.policy, row.role, row.email, row.id,
                               View.APPROVER_REMINDER, skip=voted)


async def remind_expiry(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.ACTIVE.value or row.expires_at is None:
            return
        if row.expires_at.isoformat() != job.payload.get("expires_at"):
            return  # extended since; the newer reminder will come
        await notify_user(session, now, row.email, View.REMINDER, row.id)


async def dispatch(ctx: Context, job: ClaimedJob) -> None:
    """Run a claimed job by kind (notifications live in workflow.notify)."""
    from pimbot.workflow import notify
    from pimbot.workflow.assignment import reconcile
    from pimbot.workflow.drift import check_drift

    match JobKind(job.kind):
        case JobKind.GRANT:
            await grant(ctx, job)
        case JobKind.EXPIRE:
            await expire(ctx, job)
        case JobKind.REVOKE:
            await revoke(ctx, job)
        case JobKind.APPROVAL_TIMEOUT:
            await approval_timeout(ctx, job)
        case JobKind.REMIND_APPROVERS:
            await remind_approvers(ctx, job)
        case JobKind.REMIND_EXPIRY:
            await remind_expiry(ctx, job)
        case JobKind.NOTIFY:
            await notify.deliver(ctx, job)
        case JobKind.REFRESH_CARDS:
            await notify.refresh(ctx, job)
        case JobKind.RECONCILE:
            await reconcile(ctx)
        case JobKind.DRIFT_CHECK:
            await check_drift(ctx)
        case _:  # pragma: no cover - JobKind() already refused unknown kinds
            raise PermanentJobError(f"unknown job kind {job.kind}")
