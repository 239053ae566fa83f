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

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.states import RequestState
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.store.versioned import set_many
from pimbot.workflow.audit import AuditBatch, record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.outbox import JobKind, PendingJobs, schedule

# Built once (its compiled form cached): every slot's advisory lock, in the keys' order.
_LOCK_SLOTS = text("SELECT pg_advisory_xact_lock(hashtext(t.k)) FROM unnest(CAST(:keys AS "
                   "text[])) WITH ORDINALITY AS t(k, n) ORDER BY t.n")


async def lock_slot(ctx: Context, session: AsyncSession, email: str, role: str) -> None:
    await ctx.db.lock_key(session, f"slot:{email}:{role}")


async def lock_slots(ctx: Context, session: AsyncSession,
                     slots: Sequence[tuple[str, str]]) -> None:
    """``lock_slot`` for many slots in one statement, in one order (sorted), so two batches
    never wait on each other crosswise."""
    keys = sorted({f"slot:{email}:{role}" for email, role in slots})
    if not keys or ctx.db.is_sqlite:
        return  # SQLite writers are serial already
    await session.execute(_LOCK_SLOTS, {"keys": keys})


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


async def release_many(ctx: Context, session: AsyncSession, rows: Sequence[RequestRow],
                       audit: AuditBatch, jobs: PendingJobs,
                       revoke_at: datetime | None = None) -> list[GrantRow]:
    """``release`` for many ended requests at once (their slots locked, their new states
    written): a few statements whatever their number. ``revoke_at``: when the revoke jobs
    are due (default now; later when the caller revokes at once and the job is its safety
    net). Returns the grants now due for revoke."""
    now = ctx.clock.now()
    grant_ids = sorted({row.grant_id for row in rows if row.grant_id})
    if not grant_ids:
        return []
    grants = {grant.id: grant for grant in (await session.execute(
        select(GrantRow).where(GrantRow.id.in_(grant_ids)))).scalars()}
    standing: dict[str, list[str]] = {}
    for request_id, grant_id in (await session.execute(
            select(RequestRow.id, RequestRow.grant_id).where(
                RequestRow.grant_id.in_(grant_ids),
                RequestRow.state.in_([RequestState.ACTIVE.value,
                                      RequestState.APPROVED.value])))).all():
        standing.setdefault(str(grant_id), []).append(str(request_id))
    due: dict[str, GrantRow] = {}
    for row in rows:
        grant = grants.get(row.grant_id or "")
        if grant is None or grant.id in due \
                or grant.state in {GrantState.REVOKING.value, GrantState.REVOKED.value}:
            continue  # already on its way out
        if grant.state == GrantState.GRANTING.value and grant.lease_until is not None \
                and grant.lease_until > now:
            continue  # the call in flight finds the request ended when it completes
        kept_by = [other for other in standing.get(grant.id, []) if other != row.id]
        if grant.state != GrantState.GRANTING.value and kept_by:
            audit.add("pimbot", "grant.kept", row.role, request=row.id, user=row.email,
                      grant=grant.id, held_by=kept_by[0])
            continue
        jobs.schedule(JobKind.REVOKE, revoke_at or now, dedupe_key=revoke_key(grant.id),
                      grant_id=grant.id)
        due[grant.id] = grant
    # Every grant's compare-and-set in one statement (``store.versioned``).
    await set_many(session, list(due.values()),
                   {"state": GrantState.REVOKING.value, "revoke_due_at": now})
    return list(due.values())
