"""Where access really changes: the grant, expire and revoke jobs, exactly once.

The grant job of a request either joins the live grant of the person's slot (another hold
already gave them the role: no provider call) or opens a new grant record and calls the
provider under the record's lease (``leases``). The record keeps what was granted: provider,
parameters, the activation id sent and the provider's ref; the revoke reads only that record.
Expiry revokes at once in its own job, with the revoke job written in the same transaction
as the durable promise.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.ids import new_row_id
from pimbot.domain.lifecycle import Cause
from pimbot.domain.states import RequestKind, RequestState
from pimbot.ports import GrantTarget, Provider
from pimbot.providers.errors import ProviderError
from pimbot.scheduling.queue import ClaimedJob, reschedule
from pimbot.store.observations import Figure, observe
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle import leases
from pimbot.workflow.lifecycle.eligibility import backing
from pimbot.workflow.lifecycle.failures import Failure, failure_of
from pimbot.workflow.lifecycle.holds import (
    due_for_revoke,
    holders,
    lock_slot,
    revoke_key,
    slot_grants,
)
from pimbot.workflow.lifecycle.leases import SlotBusy
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import (
    JobKind,
    notify_channels,
    notify_user,
    refresh_cards,
    schedule,
)
from pimbot.workflow.records import get_request

log = logging.getLogger(__name__)

# A failing revoke alerts the role's channels on its first failure and then at most once an
# hour (time on the grant record, so restarts and replicas do not reset it), until it succeeds.
ALERT_EVERY = timedelta(hours=1)


def target_of(grant: GrantRow) -> GrantTarget:
    """What the provider is told: only what the record says was granted."""
    return GrantTarget(activation_id=grant.activation_id, email=grant.email, role=grant.role,
                       grant=dict(grant.params), starts_at=grant.starts_at,
                       expires_at=grant.expires_at)


def provider_of(ctx: Context, grant: GrantRow) -> Provider:
    return provider_named(ctx, grant.provider)


def provider_named(ctx: Context, name: str) -> Provider:
    try:
        return ctx.providers[name]
    except KeyError:
        raise ProviderError(f"provider '{name}' is not set up", retryable=True) from None


# -- grant -------------------------------------------------------------------------------------


async def grant(ctx: Context, job: ClaimedJob) -> None:
    claimed = await _open_or_join(ctx, job.payload["request_id"])
    if claimed is None:
        return
    grant_id, token = claimed
    async with ctx.db.read() as session:
        record_row = await session.get(GrantRow, grant_id)
    assert record_row is not None
    try:
        ref = await leases.call_under_lease(
            ctx, grant_id, token, lambda: provider_of(ctx, record_row).grant(target_of(record_row)),
            record_row.provider)
    except Exception as exc:
        await leases.release(ctx, grant_id, token)
        final = isinstance(exc, ProviderError) and not exc.retryable
        if final or job.attempts + 1 >= job.max_attempts:
            await grant_failed(ctx, job.payload["request_id"], grant_id,
                                failure_of(exc, "grant"))
            return
        raise
    await granted(ctx, grant_id, token, ref)


async def _open_or_join(ctx: Context, request_id: str) -> tuple[str, str] | None:
    """In one transaction under the slot lock: join the slot's live grant (done, returns
    None), or open (or retake) this request's own grant record and its lease."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        if row.state != RequestState.APPROVED.value:
            return None  # ended before its grant: nothing was granted for it
        role = ctx.policy.roles.get(row.role)
        if role is None:
            await move(ctx, session, row, Cause.POLICY_CHANGED,
                       note=f"role {row.role} is no longer in the policy")
            return None
        await lock_slot(ctx, session, row.email, row.role)
        still_backed, cap = await backing(session, row, now)
        if not still_backed:
            await move(ctx, session, row, Cause.INELIGIBLE, note="no longer eligible")
            return None
        expires = expiry_of(row, now, cap)
        for live in await slot_grants(session, row.email, row.role):
            if live.state == GrantState.GRANTED.value and _same_grant(live, role.provider,
                                                                     role.grant):
                row.grant_id = live.id  # another hold gave them the role: join it
                row.expires_at = expires
                await move(ctx, session, row, Cause.GRANTED, grant=live.id, joined=True,
                           expires_at=iso(expires))
                if expires is None or (live.expires_at and expires > live.expires_at):
                    await schedule(session, JobKind.EXTEND_GRANT, now,
                                   dedupe_key=f"extend:{live.id}", grant_id=live.id)
                return None
            if live.id != row.grant_id:
                raise SlotBusy(f"{row.id}: grant {live.id} of this slot is {live.state}")
        existing = await session.get(GrantRow, row.grant_id) if row.grant_id else None
        if existing is None:
            existing = GrantRow(
                id=new_row_id("g"), email=row.email, role=row.role, provider=role.provider,
                params=dict(role.grant), activation_id=row.id,
                state=GrantState.GRANTING.value, starts_at=now, expires_at=expires,
                created_at=now, failures=0, failure="")
            session.add(existing)
            row.grant_id = existing.id
        existing.expires_at = expires
        row.expires_at = expires
        token = leases.take(ctx, existing)
        await session.flush()
        return existing.id, token


def _same_grant(grant: GrantRow, provider: str, params: dict[str, object]) -> bool:
    return grant.provider == provider and dict(grant.params) == dict(params)


def expiry_of(row: RequestRow, now: datetime, cap: datetime | None) -> datetime | None:
    if row.kind == RequestKind.ASSIGNMENT.value:
        expires = row.expires_at  # an assignment ends at its own end date
    else:
        expires = now + timedelta(seconds=row.duration_s or 0)
    if cap is not None and (expires is None or cap < expires):
        expires = cap  # access never outlasts the eligibility behind it
    return expires


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


async def granted(ctx: Context, grant_id: str, token: str, ref: str | None) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        record_row = await leases.fenced(ctx, session, grant_id, token)
        record_row.state = GrantState.GRANTED.value
        record_row.ref = ref
        record_row.granted_at = now
        await session.flush()
        row = await get_request(session, record_row.activation_id)
        if row.state == RequestState.APPROVED.value:
            await move(ctx, session, row, Cause.GRANTED, grant=grant_id,
                       expires_at=iso(row.expires_at))
            return
        # Ended while the grant was in flight: take it back unless another hold joined.
        await record(ctx, session, "pimbot", "grant.applied_late", row.role, request=row.id,
                     user=row.email, grant=grant_id)
        if not await holders(session, grant_id, besides=row.id):
            await due_for_revoke(ctx, session, record_row)


async def grant_failed(ctx: Context, request_id: str, grant_id: str, failure: Failure) -> None:
    """Cards say the short reason and the error id; the audit event and the log, the detail."""
    log.warning("grant %s of request %s failed (error %s): %s", grant_id, request_id,
                failure.error_id, failure.detail)
    async with ctx.db.transaction() as session:
        record_row = await session.get(GrantRow, grant_id, with_for_update=True)
        assert record_row is not None
        record_row.failure = failure.recorded
        if record_row.state == GrantState.GRANTING.value:
            # The provider may have applied part of it: make sure nothing is left behind.
            await due_for_revoke(ctx, session, record_row)
        row = await get_request(session, request_id)
        if row.state == RequestState.APPROVED.value:
            row.failure = failure.shown
            await move(ctx, session, row, Cause.GRANT_FAILED, outcome="failed",
                       error=failure.detail, error_id=failure.error_id)


async def sweep_orphans(ctx: Context, session: AsyncSession) -> int:
    """Grants whose provider call was cut short (a crash mid-grant: the record stays
    ``granting`` with no lease) and whose every hold has ended since: the provider may have
    applied them, so they are revoked. Runs when a dead replica's leases are taken over and
    with every reconcile (at start and every few minutes). Returns how many."""
    now = ctx.clock.now()
    stale = await session.execute(select(GrantRow).where(
        GrantRow.state == GrantState.GRANTING.value,
        or_(GrantRow.lease_until.is_(None), GrantRow.lease_until <= now)))
    swept = 0
    for record_row in list(stale.scalars()):
        await lock_slot(ctx, session, record_row.email, record_row.role)
        if not await holders(session, record_row.id):
            await record(ctx, session, "pimbot", "grant.orphaned", record_row.role,
                         grant=record_row.id, user=record_row.email,
                         request=record_row.activation_id)
            await due_for_revoke(ctx, session, record_row)
            swept += 1
    return swept


# -- expire and revoke ---------------------------------------------------------------------------


async def expire(ctx: Context, job: ClaimedJob) -> None:
    """End an activation at its time and revoke at once, in this job (the revoke job written
    with the expiry is the safety net if this process dies before the provider confirms)."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.ACTIVE.value or row.expires_at is None:
            return
        if row.expires_at > now:
            return  # extended since this job was written; a newer job exists
        await move(ctx, session, row, Cause.EXPIRED)
        grant_id = row.grant_id
    if grant_id is not None:
        await revoke_grant(ctx, grant_id, attempts=None)


async def revoke(ctx: Context, job: ClaimedJob) -> None:
    grant_id = job.payload.get("grant_id")
    if grant_id is None:  # a job written before grant records (payload: the request)
        async with ctx.db.read() as session:
            grant_id = (await get_request(session, job.payload["request_id"])).grant_id
        if grant_id is None:
            return
    await revoke_grant(ctx, grant_id, attempts=job.attempts)


async def revoke_grant(ctx: Context, grant_id: str, attempts: int | None) -> None:
    """Revoke what the record says was granted. ``attempts`` is the revoke job's failure
    count; None for the attempt made by the expiry itself, whose failure hands over to the
    revoke job at once."""
    async with ctx.db.transaction() as session:
        record_row = await session.get(GrantRow, grant_id)
        if record_row is None or record_row.state != GrantState.REVOKING.value:
            return  # revoked already, or still held (nothing to do, and no key consumed)
        if attempts is None and leases.busy(record_row, ctx):
            return  # the revoke job has it
        token = leases.take(ctx, record_row)
    try:
        await leases.call_under_lease(ctx, grant_id, token, lambda: provider_of(
            ctx, record_row).revoke(target_of(record_row), record_row.ref), record_row.provider)
    except Exception as exc:
        await leases.release(ctx, grant_id, token)
        failure = failure_of(exc, "revoke")
        log.warning("revoke of grant %s failed (error %s): %s", grant_id, failure.error_id,
                    failure.detail)
        await revoke_failed(ctx, grant_id, failure, retry_now=attempts is None)
        if attempts is None:
            return  # the revoke job retries
        raise
    await revoked(ctx, grant_id, token)


async def revoke_failed(ctx: Context, grant_id: str, failure: Failure, *,
                         retry_now: bool) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        record_row = await session.get(GrantRow, grant_id)
        assert record_row is not None
        record_row.failures += 1
        record_row.failure = failure.recorded
        if retry_now:
            await reschedule(session, revoke_key(grant_id), now)
        last = record_row.failure_alerted_at
        if last is not None and now - last < ALERT_EVERY:
            return
        record_row.failure_alerted_at = now
        await record(ctx, session, "pimbot", "revoke.failing", record_row.role, "failed",
                     grant=grant_id, user=record_row.email, error=failure.detail,
                     error_id=failure.error_id, failures=record_row.failures)
        for row in await holds_of(session, grant_id):
            row.failure = failure.shown
            await session.flush()
            await alert(ctx, session, now, row, "revoke_failing")


async def revoked(ctx: Context, grant_id: str, token: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        record_row = await leases.fenced(ctx, session, grant_id, token)
        if record_row.state != GrantState.REVOKING.value:
            return
        record_row.state = GrantState.REVOKED.value
        record_row.revoked_at = now
        await session.flush()
        await record(ctx, session, "pimbot", "grant.revoked", record_row.role,
                     request=record_row.activation_id, user=record_row.email, grant=grant_id,
                     failures=record_row.failures, once_key=f"grant.revoked:{grant_id}")
        holds = await holds_of(session, grant_id)
        observe(session, Figure.REVOKED_LATE, lateness(record_row, holds, now))
        for row in holds:
            if row.revoked_at is not None:
                continue
            row.revoked_at = now
            await session.flush()
            if row.state != RequestState.FAILED.value:
                await notify_user(session, now, row.email, View.REQUESTER, row.id)
            if record_row.failure_alerted_at is not None and row.id == record_row.activation_id:
                # the channels heard it was failing: tell them it is done
                await alert(ctx, session, now, row, "revoke_recovered")
            await refresh_cards(session, now, row.id)


async def alert(ctx: Context, session: AsyncSession, now: datetime, row: RequestRow,
                 event: str) -> None:
    """The role's notify channels; the admins when it has none (never nobody)."""
    channels = _channels(ctx, row.role)
    if channels:
        await notify_channels(session, now, channels, View.NOTICE, row.id, event)
        return
    for admin in ctx.policy.admins:
        await notify_user(session, now, admin, View.NOTICE, row.id, event)


def lateness(grant: GrantRow, holds: list[RequestRow], now: datetime) -> float:
    """Seconds from when the access should have ended to the confirmed revoke: the last
    hold's end (its expiry time for an expired one, however late its job ran)."""
    ends = [row.expires_at if row.state == RequestState.EXPIRED.value and row.expires_at
            else row.ended_at for row in holds]
    known = [end for end in ends if end is not None]
    due = max(known) if known else grant.revoke_due_at
    return max(0.0, (now - due).total_seconds()) if due is not None else 0.0


async def holds_of(session: AsyncSession, grant_id: str) -> list[RequestRow]:
    result = await session.execute(select(RequestRow).where(RequestRow.grant_id == grant_id))
    return list(result.scalars())


def _channels(ctx: Context, role_name: str) -> tuple[str, ...]:
    role = ctx.policy.roles.get(role_name)
    return role.notify if role else ()
