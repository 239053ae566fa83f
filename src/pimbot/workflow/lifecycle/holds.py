"""Holds on a grant: which requests stand on a person's grant of a role, and releasing one.

A person's *slot* for a role (email, role) has at most one live grant. Every request that
gives them the role (activations, break-glass, an active assignment) *holds* it: the first
hold makes the provider call, later overlapping holds join the grant, and the grant is revoked
when the last hold ends. So the provider sees exactly one grant and one revoke per live
period, with the activation id of the hold that opened it.

Every question about a slot is asked under the slot's lock (an advisory lock on PostgreSQL;
SQLite writers are serial), so it has one answer at a time across replicas.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.states import RequestState
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.outbox import JobKind, schedule


async def lock_slot(ctx: Context, session: AsyncSession, email: str, role: str) -> None:
    await ctx.db.lock_key(session, f"slot:{email}:{role}")


async def slot_grants(session: AsyncSession, email: str, role: str) -> list[GrantRow]:
    """The slot's grants not yet confirmed revoked (at most one live, others revoking)."""
    result = await session.execute(select(GrantRow).where(
        GrantRow.email == email, GrantRow.role == role,
        GrantRow.state != GrantState.REVOKED.value).order_by(GrantRow.created_at))
    return list(result.scalars())


async def holders(session: AsyncSession, grant_id: str,
                  besides: str = "") -> list[RequestRow]:
    """Requests that still stand on the grant: active ones (and the one being granted)."""
    result = await session.execute(select(RequestRow).where(
        RequestRow.grant_id == grant_id, RequestRow.id != besides,
        RequestRow.state.in_([RequestState.ACTIVE.value, RequestState.APPROVED.value])))
    return list(result.scalars())


def revoke_key(grant_id: str) -> str:
    return f"revoke:{grant_id}"


async def release(ctx: Context, session: AsyncSession, row: RequestRow) -> GrantRow | None:
    """``row`` has ended: revoke its grant unless another hold still stands on it. Returns
    the grant when it is now due for revoke (the caller may try the revoke at once)."""
    if row.grant_id is None:
        return None
    await lock_slot(ctx, session, row.email, row.role)
    grant = await session.get(GrantRow, row.grant_id)
    if grant is None or grant.state in {GrantState.REVOKING.value, GrantState.REVOKED.value}:
        return None  # already on its way out
    if grant.state == GrantState.GRANTING.value:
        if grant.lease_until is not None and grant.lease_until > ctx.clock.now():
            return None  # the call in flight finds the request ended when it completes
        await due_for_revoke(ctx, session, grant)  # an attempt failed: it may have applied
        return grant
    kept_by = await holders(session, grant.id, besides=row.id)
    if kept_by:
        await record(ctx, session, "pimbot", "grant.kept", row.role, request=row.id,
                     user=row.email, grant=grant.id, held_by=kept_by[0].id)
        return None
    await due_for_revoke(ctx, session, grant)
    return grant


async def due_for_revoke(ctx: Context, session: AsyncSession, grant: GrantRow) -> None:
    """No hold is left: the grant goes (the revoke job is the durable promise)."""
    now = ctx.clock.now()
    grant.state = GrantState.REVOKING.value
    grant.revoke_due_at = now
    await session.flush()
    await schedule(session, JobKind.REVOKE, now, dedupe_key=revoke_key(grant.id),
                   grant_id=grant.id)
