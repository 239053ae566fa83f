"""Extending active access: the role's rules apply again (MFA, approval, its maximum)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.decisions import approvals_needed
from pimbot.domain.durations import format_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.examples import activation_example
from pimbot.domain.ids import new_request_id
from pimbot.domain.model import Role
from pimbot.domain.states import RequestKind, RequestState
from pimbot.store.tables import RequestRow
from pimbot.store.versioned import set_many
from pimbot.ui.cards import Reply
from pimbot.ui.views import requester_card
from pimbot.workflow import forms
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.eligibility import backing
from pimbot.workflow.lifecycle.expiry import schedule_expiry
from pimbot.workflow.notices.outbox import (
    JobKind,
    notify_approvers,
    refresh_cards,
    schedule,
)
from pimbot.workflow.permissions import owned
from pimbot.workflow.records import active_activation, get_request, open_requests, snapshot
from pimbot.workflow.usecases.grant_end import schedule_grant_end
from pimbot.workflow.usecases.unneeded_code import note_unneeded_code


async def extend(ctx: Context, actor: Actor, role_name: str | None, duration: timedelta | None,
                 request_id: str | None = None, code: str | None = None) -> Reply:
    """More time on an active activation: the role's rules apply again (MFA, approval), and
    the whole activation stays within the role's maximum. Break-glass is never extended."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:  # a refusal below is audited, so it writes
        row = await _extendable(ctx, session, actor, role_name, request_id)
        role = ctx.role(row.role)
        amount = duration or role.default_duration
        _check_extension(row, role, amount)
    if role.require_mfa:
        if code is None:
            return Reply(ok=False, form=forms.extend_code_form(row.id, format_duration(amount)),
                         text=f"Extending {role.name} needs your authenticator code.",
                         hint=f"extend {role.name} for {format_duration(amount)} code 123456",
                         subject=row.id)
        if ctx.mfa is None:
            raise PimError(ErrorCode.NOT_AVAILABLE, "MFA is not set up on this pimbot.")
        await ctx.mfa.verify(actor.email, code, purpose=f"extend {role.name}")
    async with ctx.db.transaction() as session:
        row = await owned(ctx, session, actor, row.id, "extension")
        _check_extension(row, role, amount)
        if role.approval.required:
            ext = await _request_extension(ctx, session, actor, row, amount, now)
            view = await snapshot(session, ctx.policy, ext)
            return note_unneeded_code(Reply(text=f"Extension {ext.id} sent for approval.",
                                            card=requester_card(view), subject=ext.id),
                                      code, role.require_mfa, f"Extending {role.name}")
        await _extend_row(ctx, session, row, amount, now, actor.email)
        view = await snapshot(session, ctx.policy, row)
    return note_unneeded_code(Reply(text=f"Extended {row.role} by {format_duration(amount)}.",
                                    card=requester_card(view), subject=row.id),
                              code, role.require_mfa, f"Extending {role.name}")


async def _extendable(ctx: Context, session: AsyncSession, actor: Actor,
                      role_name: str | None, request_id: str | None) -> RequestRow:
    if request_id is not None:
        return await owned(ctx, session, actor, request_id, "extension")
    role = ctx.role(role_name, lambda r: f"extend {r.name}")
    found = await active_activation(session, actor.email, role.name)
    if found is None:
        raise PimError(ErrorCode.STATE, f"You have no active {role.name} access to extend.",
                       activation_example(role))
    return found


def _check_extension(row: RequestRow, role: Role, amount: timedelta) -> None:
    if row.state != RequestState.ACTIVE.value or row.expires_at is None \
            or row.granted_at is None:
        raise PimError(ErrorCode.STATE, f"Request {row.id} is not active with an end time.",
                       "status")
    if row.kind == RequestKind.BREAKGLASS.value:
        raise PimError(ErrorCode.FORBIDDEN, "Break-glass access cannot be extended; activate "
                       "the role the normal way.", activation_example(role))
    total = row.expires_at + amount - row.granted_at
    if total > role.max_duration:
        room = max(role.max_duration - (row.expires_at - row.granted_at), timedelta(0))
        raise PimError(ErrorCode.DURATION,
                       f"Extending by {format_duration(amount)} would make this activation "
                       f"longer than the maximum of {format_duration(role.max_duration)} for "
                       f"{role.name} (at most {format_duration(room)} more).",
                       f"extend {role.name} for {format_duration(room)}" if room
                       else activation_example(role))


async def _request_extension(ctx: Context, session: AsyncSession, actor: Actor,
                             row: RequestRow, amount: timedelta, now: datetime) -> RequestRow:
    role = ctx.role(row.role)
    pending = await open_requests(session, email=row.email, role=row.role,
                                  states=frozenset({RequestState.PENDING_APPROVAL}))
    if pending:
        raise PimError(ErrorCode.CONFLICT, f"Request {pending[0].id} is already waiting for "
                       "approval.", f"cancel {pending[0].id}")
    # Written under the activation's compare-and-set, although nothing of it changes: an end
    # of the activation committed since it was read makes this turn retry (and see it ended),
    # and one committing after makes that end retry (and withdraw this extension). Without
    # it, each would miss the other and the extension would wait on ended access.
    await set_many(session, [row], {"state": row.state})
    assert row.expires_at is not None
    ext = RequestRow(
        id=new_request_id(), kind=RequestKind.EXTENSION.value, email=row.email, role=row.role,
        state=RequestState.PENDING_APPROVAL.value, duration_s=int(amount.total_seconds()),
        reason=f"extend {row.id}", platform=actor.platform, requested_at=now, start_at=now,
        min_approvals=approvals_needed(ctx.policy, role, row.email),
        approval_due_at=min(now + role.approval.timeout, row.expires_at),
        parent_id=row.id, votes_count=0,
    )
    session.add(ext)
    await session.flush()
    await record(ctx, session, actor.email, "extension.requested", row.role,
                 request=ext.id, parent=row.id, duration=format_duration(amount))
    await notify_approvers(session, now, ctx.policy, row.role, row.email, ext.id)
    await schedule(session, JobKind.APPROVAL_TIMEOUT, ext.approval_due_at or now,
                   dedupe_key=f"timeout:{ext.id}", request_id=ext.id)
    return ext


async def apply_extension(ctx: Context, session: AsyncSession, ext: RequestRow,
                          now: datetime) -> str:
    """An approved extension request lengthens its parent activation if still active.
    Returns why it was not applied ("" when it was), and keeps it in the request's
    ``failure`` (its ``decision_note`` is the approver's comment)."""
    parent = await get_request(session, ext.parent_id or "")
    if parent.state != RequestState.ACTIVE.value or ext.duration_s is None:
        ext.failure = f"activation {parent.id} had already ended"  # pimbot's words, apart
        return f"activation {parent.id} has ended, so nothing was extended"
    amount = timedelta(seconds=ext.duration_s)
    try:
        _check_extension(parent, ctx.role(parent.role), amount)
    except PimError as refused:
        ext.failure = refused.message
        return f"not applied: {refused.message}"
    await _extend_row(ctx, session, parent, amount, now, ext.decided_by)
    return ""


async def _extend_row(ctx: Context, session: AsyncSession, row: RequestRow, amount: timedelta,
                      now: datetime, actor: str) -> None:
    assert row.expires_at is not None
    row.expires_at = row.expires_at + amount
    _, cap = await backing(session, row, now)
    if cap is not None and cap < row.expires_at:
        row.expires_at = cap  # never beyond the eligibility behind it
    row.duration_s = (row.duration_s or 0) + int(amount.total_seconds())
    await session.flush()
    await record(ctx, session, actor, "request.extended", row.role, request=row.id,
                 user=row.email, expires_at=row.expires_at.isoformat())
    await schedule_expiry(ctx, session, row)
    if row.grant_id is not None:  # a provider whose target ends access itself hears of it
        await schedule_grant_end(session, now, row.grant_id)
    await refresh_cards(session, now, row.id)


__all__ = ["apply_extension", "extend"]
