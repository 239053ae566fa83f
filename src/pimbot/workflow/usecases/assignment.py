"""Assignments: admins assign and unassign; active assignments are granted like activations."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.durations import format_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.ids import new_request_id, new_row_id
from pimbot.domain.lifecycle import Cause
from pimbot.domain.model import AssignmentType
from pimbot.domain.states import OPEN_STATES, RequestKind, RequestState
from pimbot.domain.times import resolve_until
from pimbot.store.tables import AssignmentRow, RequestRow
from pimbot.ui.cards import Reply
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.eligibility import end_unbacked, schedule_reconcile
from pimbot.workflow.lifecycle.expiry import schedule_expiry
from pimbot.workflow.lifecycle.grants import sweep_orphans
from pimbot.workflow.lifecycle.stranded import end_stranded
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.permissions import require_admin

RECONCILE_SLICE = 200  # assignments a pass looks at between two turns of the event loop
_FOLLOWING = frozenset({RequestState.APPROVED.value, RequestState.ACTIVE.value})


async def assign(ctx: Context, actor: Actor, email: str, role_name: str, kind: AssignmentType,
                 duration: timedelta | None, until: str | None) -> Reply:
    await require_admin(ctx, actor, "assign")
    role = ctx.role(role_name, lambda r: f"assign {email} {r.name} {kind.value}")
    now = ctx.clock.now()
    ends_at = now + duration if duration else resolve_until(until, now) if until else None
    if ends_at is not None and ends_at <= now:
        raise PimError(ErrorCode.PARSE, "The end of the assignment is in the past.",
                       f"assign {email} {role.name} {kind.value} until 2027-03-31")
    async with ctx.db.transaction() as session:
        row = AssignmentRow(id=new_row_id("a"), email=email, role=role.name, type=kind.value,
                            starts_at=now, ends_at=ends_at, source="admin",
                            created_by=actor.email, created_at=now)
        session.add(row)
        await session.flush()
        await record(ctx, session, actor.email, "assignment.added", role.name, user=email,
                     type=kind.value, until=ends_at.isoformat() if ends_at else None)
        if kind is AssignmentType.ACTIVE:
            await _open_assignment_grant(ctx, session, row, now)
    until_text = f" until {ends_at:%Y-%m-%d %H:%M} UTC" if ends_at else " (permanent)"
    extra = f" for {format_duration(duration)}" if duration else ""
    return Reply(text=f"{email} is now {kind.value} for {role.name}{extra}{until_text}.")


async def unassign(ctx: Context, actor: Actor, email: str, role_name: str) -> Reply:
    await require_admin(ctx, actor, "unassign")
    role = ctx.role(role_name, lambda r: f"unassign {email} {r.name}")
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        rows = (await session.execute(select(AssignmentRow).where(
            AssignmentRow.email == email, AssignmentRow.role == role.name,
            AssignmentRow.removed_at.is_(None)))).scalars().all()
        if not rows:
            raise PimError(ErrorCode.STATE, f"{email} has no assignment for {role.name}.",
                           f"whois {role.name}")
        for row in rows:  # rows first, the audit chain's lock last (one lock order)
            row.removed_at = now
            await _end_assignment_grant(ctx, session, row.id, now)
        await session.flush()
        await end_unbacked(ctx, session, now, email=email, role=role.name)
        for row in rows:
            await record(ctx, session, actor.email, "assignment.removed", role.name,
                         user=email, type=row.type, source=row.source)
    note = " (it is in the policy file, so the next policy apply adds it back)" if any(
        r.source == "policy" for r in rows) else ""
    return Reply(text=f"Removed {email}'s {role.name} assignment{note}.")


async def _open_assignment_grant(ctx: Context, session: AsyncSession, row: AssignmentRow,
                                 now: datetime) -> None:
    start = max(row.starts_at or now, now)
    request = RequestRow(
        id=new_request_id(), kind=RequestKind.ASSIGNMENT.value, email=row.email, role=row.role,
        state=RequestState.APPROVED.value,
        duration_s=int((row.ends_at - start).total_seconds()) if row.ends_at else None,
        reason=f"active assignment {row.id}", platform="", requested_at=now, start_at=start,
        decided_at=now, decided_by=row.created_by or "policy", min_approvals=0,
        assignment_id=row.id, expires_at=row.ends_at, votes_count=0,
    )
    session.add(request)
    await session.flush()
    await schedule(session, JobKind.GRANT, start, dedupe_key=f"grant:{request.id}",
                   request_id=request.id)


async def _end_assignment_grant(ctx: Context, session: AsyncSession, assignment_id: str,
                                now: datetime) -> None:
    result = await session.execute(select(RequestRow).where(
        RequestRow.assignment_id == assignment_id,
        RequestRow.state.in_([s.value for s in OPEN_STATES])))
    for request in result.scalars():
        await move(ctx, session, request, Cause.ASSIGNMENT_ENDED, note="assignment removed",
                   assignment=assignment_id)


async def _follow_window(ctx: Context, session: AsyncSession, row: AssignmentRow,
                         requests: list[RequestRow]) -> None:
    """An active assignment whose end changed (a policy edit) moves its grant's end too."""
    for request in requests:
        if request.state not in _FOLLOWING or request.expires_at == row.ends_at:
            continue
        request.expires_at = row.ends_at
        await session.flush()
        await record(ctx, session, "policy", "assignment.window_changed", row.role,
                     request=request.id, user=row.email,
                     until=row.ends_at.isoformat() if row.ends_at else None)
        if request.state == RequestState.ACTIVE.value:
            await schedule_expiry(ctx, session, request)  # due now if the end has passed


async def _open_by_assignment(session: AsyncSession) -> dict[str, list[RequestRow]]:
    """Every open request of an assignment, by assignment: one read for a whole pass (a
    read per assignment was 5,000 selects at start with 5,000 active assignments, and on
    SQLite, whose statements run on the loop's thread, one freeze of several seconds)."""
    result = await session.execute(select(RequestRow).where(
        RequestRow.assignment_id.is_not(None),
        RequestRow.state.in_([s.value for s in OPEN_STATES])).order_by(RequestRow.id))
    by_assignment: dict[str, list[RequestRow]] = {}
    for request in result.scalars():
        by_assignment.setdefault(request.assignment_id or "", []).append(request)
    return by_assignment


async def reconcile(ctx: Context) -> int:
    """End what the policy no longer allows (removed roles, changed grants); open a grant
    for every current active assignment without one; end removed ones; end activations
    whose eligibility has gone (unassigned, dropped from the policy, expired). Runs at start
    and every few minutes."""
    now = ctx.clock.now()
    opened = 0
    await end_stranded(ctx)
    async with ctx.db.transaction() as session:
        await ctx.db.lock_key(session, "reconcile")  # replicas at start: one pass at a time
        await sweep_orphans(ctx, session)  # grant calls a crash cut short, holders gone
        await end_unbacked(ctx, session, now)
        assignments = (await session.execute(select(AssignmentRow).where(
            AssignmentRow.type == AssignmentType.ACTIVE.value))).scalars().all()
        handled = set((await session.execute(select(RequestRow.assignment_id).where(
            RequestRow.assignment_id.is_not(None)))).scalars())
        open_requests = await _open_by_assignment(session)
        for count, row in enumerate(assignments, 1):
            if count % RECONCILE_SLICE == 0:
                await asyncio.sleep(0)  # let the HTTP server and the probes answer meanwhile
            if row.removed_at is not None:
                for request in open_requests.get(row.id, ()):
                    await move(ctx, session, request, Cause.ASSIGNMENT_ENDED,
                               note="assignment removed", assignment=row.id)
            elif row.id in handled:
                await _follow_window(ctx, session, row, open_requests.get(row.id, []))
            elif (row.ends_at is None or row.ends_at > now) and row.role in ctx.policy.roles:
                await _open_assignment_grant(ctx, session, row, now)
                await record(ctx, session, "policy", "assignment.scheduled", row.role,
                             user=row.email, assignment=row.id)
                opened += 1
    await schedule_reconcile(ctx, now)
    return opened
