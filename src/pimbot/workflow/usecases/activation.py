"""Activating a role: checks, the request row, and its follow-up jobs (break-glass too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.approval_rules import ApprovalPlan, plan_approval
from pimbot.domain.decisions import (
    approvals_needed,
    bound_duration,
    check_justification,
    check_ticket,
)
from pimbot.domain.durations import format_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.examples import activation_example
from pimbot.domain.ids import new_request_id
from pimbot.domain.model import Role
from pimbot.domain.states import OPEN_STATES, RequestKind, RequestState
from pimbot.domain.times import resolve_when
from pimbot.store.tables import RequestRow
from pimbot.ui.cards import Reply
from pimbot.ui.views import View, requester_card
from pimbot.workflow import forms
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record, record_alone
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.holds import lock_slot
from pimbot.workflow.notices.outbox import (
    JobKind,
    approver_notices,
    channel_notices,
    job,
    notify_channels,
    notify_user,
    schedule,
    schedule_all,
)
from pimbot.workflow.records import (
    eligibility,
    eligible_roles,
    insert_request,
    last_ending,
    new_request,
    open_requests,
    snapshot,
)
from pimbot.workflow.usecases.already_active import refuse_if_active
from pimbot.workflow.usecases.approval_rules import (
    approval_plan,
    plan_needs_lookup,
    record_automatic,
    schedule_escalations,
)
from pimbot.workflow.usecases.meant_hints import with_breakglass_code
from pimbot.workflow.usecases.review_answers import open_breakglass_item
from pimbot.workflow.usecases.unneeded_code import note_unneeded_code

MAX_SCHEDULE_AHEAD = timedelta(days=30)
# What ``activate`` reads of the person's requests for the role, in one query: one already
# waiting for approval is a conflict, an active one is refused (``already_active``).
_WAITING_OR_ACTIVE = frozenset({RequestState.PENDING_APPROVAL, RequestState.ACTIVE})


@dataclass(frozen=True)
class ActivationInput:
    role: str | None
    duration: timedelta | None = None
    reason: str | None = None
    ticket: str | None = None
    code: str | None = None
    at: str | None = None


def missing_parts(role: Role, given: ActivationInput) -> list[str]:
    missing = []
    if role.require_justification and not (given.reason and given.reason.strip()):
        missing.append("reason")
    if role.require_ticket is not False and not given.ticket:
        missing.append("ticket")
    if role.require_mfa and not given.code:
        missing.append("code")
    return missing


async def activate(ctx: Context, actor: Actor, given: ActivationInput) -> Reply:
    reply = await _activate(ctx, actor, given)
    role = ctx.policy.roles.get(given.role) if given.role is not None else None
    if role is None or reply.form is not None:
        return reply
    return note_unneeded_code(reply, given.code, role.require_mfa, f"Activating {role.name}")


async def _activate(ctx: Context, actor: Actor, given: ActivationInput) -> Reply:
    now = ctx.clock.now()
    quick = ctx.policy.roles.get(given.role) if given.role is not None else None
    if quick is not None and not quick.require_mfa and not plan_needs_lookup(quick):
        # Nothing between the checks and the new row waits on the outside world (no code
        # to verify, no on-call source or count to ask): the reads, the checks and the
        # writes are one transaction. A refusal raised here rolls it back (nothing was
        # written); one that is audited on its own is decided again below, as before.
        async with ctx.db.transaction() as session:
            eligible, mine = await _read(session, actor.email, quick.name, now)
            if quick.name in eligible and not missing_parts(quick, given):
                duration, start_at = _checked(quick, given, mine, now)
                plan = plan_approval(quick, now=now, duration=duration, recent=0,
                                     on_call=None)
                return await _write(ctx, session, actor, quick, RequestKind.ACTIVATION,
                                    duration, given, start_at, plan)
    async with ctx.db.read() as session:  # one read for what the checks below need
        eligible, mine = await _read(session, actor.email, given.role, now)
    if given.role is None:
        return forms.activation_form_reply(ctx.policy, eligible, given, [])
    role = ctx.role(given.role)
    if role.name not in eligible:
        await record_alone(ctx, actor.email, "activation.refused", role.name,
                           reason="not_eligible")
        listed = ", ".join(eligible) or "none"
        raise PimError(ErrorCode.NOT_ELIGIBLE,
                       f"You are not eligible for {role.name}. Your eligible roles: {listed}.",
                       "roles")
    missing = missing_parts(role, given)
    if missing:
        await record_alone(ctx, actor.email, "activation.refused", role.name,
                           reason="incomplete", missing=",".join(missing))
        return forms.activation_form_reply(ctx.policy, eligible, given, missing)
    duration, start_at = _checked(role, given, mine, now)
    if role.require_mfa:
        await _verify_mfa(ctx, actor.email, given.code, f"activate {role.name}")
    plan = await approval_plan(ctx, actor.email, role, duration, now)
    return await _create(ctx, actor, role, RequestKind.ACTIVATION, duration, given, start_at,
                         plan)


async def _read(session: AsyncSession, email: str, role: str | None,
                now: datetime) -> tuple[list[str], list[RequestRow]]:
    """The person's eligible roles, and their requests for ``role`` waiting for approval or
    active (when eligible for it): what ``activate``'s checks need, in two queries."""
    eligible = await eligible_roles(session, email, now)
    if role not in eligible:
        return eligible, []
    return eligible, await open_requests(session, email=email, role=role,
                                         states=_WAITING_OR_ACTIVE)


def _checked(role: Role, given: ActivationInput, mine: list[RequestRow],
             now: datetime) -> tuple[timedelta, datetime]:
    """The duration and start of a request ``activate`` may make, or the refusal."""
    duration = bound_duration(role, given.duration)
    check_justification(role, given.reason)
    check_ticket(role, given.ticket)
    start_at = _start_time(given.at, now, role)
    waiting = next((r.id for r in mine if r.state == RequestState.PENDING_APPROVAL.value), None)
    if waiting is not None:
        raise PimError(ErrorCode.CONFLICT,
                       f"You already have request {waiting} for {role.name} waiting for "
                       "approval.", f"cancel {waiting}")
    refuse_if_active(last_ending(mine), role, start_at, now)
    return duration, start_at


async def breakglass(ctx: Context, actor: Actor, role_name: str, reason: str,
                     duration: timedelta | None, code: str | None) -> Reply:
    """Emergency access: no approval, still MFA, capped, loud."""
    role = ctx.role(role_name, lambda r: activation_example(r, verb="breakglass"))
    now = ctx.clock.now()
    if not role.breakglass.allowed:
        await record_alone(ctx, actor.email, "breakglass.refused", role.name,
                           reason="not_allowed")
        raise PimError(ErrorCode.FORBIDDEN, f"{role.name} does not allow break-glass access.",
                       activation_example(role))
    async with ctx.db.read() as session:
        if await eligibility(session, actor.email, role.name, now) is None:
            await record_alone(ctx, actor.email, "breakglass.refused", role.name,
                               reason="not_eligible")
            raise PimError(ErrorCode.NOT_ELIGIBLE,
                           f"You are not eligible for {role.name}.", "roles")
    if not reason.strip():
        raise PimError(ErrorCode.JUSTIFICATION, "Break-glass needs a reason.",
                       activation_example(role, verb="breakglass"))
    bounded = bound_duration(role, duration or role.breakglass.max_duration, breakglass=True)
    async with ctx.db.read() as session:
        held = await _breakglass_held(session, actor.email, role.name)
    if held is not None:
        await _refuse_second_breakglass(ctx, actor, role, held)
    try:
        await _verify_mfa(ctx, actor.email, code, f"breakglass {role.name}")
    except PimError as error:
        raise await with_breakglass_code(ctx, actor.email, role, error, code, duration,
                                         reason) from None
    given = ActivationInput(role.name, bounded, reason)
    try:
        return await _create(ctx, actor, role, RequestKind.BREAKGLASS, bounded, given, now)
    except _BreakglassHeld as race:  # another break-glass committed a moment earlier
        await _refuse_second_breakglass(ctx, actor, role, race.request_id)


class _BreakglassHeld(Exception):
    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


async def _breakglass_held(session: AsyncSession, email: str, role: str) -> str | None:
    """A break-glass of this person and role that is open, or ended but whose access is not
    yet confirmed removed (its follow-up is still open): one at a time."""
    rows = (await session.scalars(select(RequestRow).where(
        RequestRow.email == email, RequestRow.role == role,
        RequestRow.kind == RequestKind.BREAKGLASS.value,
        or_(RequestRow.state.in_([s.value for s in OPEN_STATES]),
            (RequestRow.grant_id.is_not(None) & RequestRow.revoked_at.is_(None))))
        .order_by(RequestRow.requested_at.desc()).limit(1))).all()
    return rows[0].id if rows else None


async def _refuse_second_breakglass(ctx: Context, actor: Actor, role: Role,
                                    held: str) -> NoReturn:
    """Refuse, audit, and alert the admins: a second break-glass is a signal."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        await record(ctx, session, actor.email, "breakglass.refused", role.name, "refused",
                     reason="already_active", request=held)
        title = f"{actor.email} tried a second break-glass of {role.name}"
        text = (f"Request {held} is still active or its access is not yet removed; the new "
                "break-glass was refused.")
        for admin in ctx.policy.admins:
            await schedule(session, JobKind.NOTIFY, now, audience=f"user:{admin}",
                           view=View.PROBLEM.value, request_id=held, title=title, text=text)
    raise PimError(ErrorCode.CONFLICT,
                   f"You already have break-glass access to {role.name} (request {held}); only "
                   "one at a time. The admins were told of this attempt.", "status")


def _start_time(at: str | None, now: datetime, role: Role) -> datetime:
    if at is None:
        return now
    start = resolve_when(at, now)
    later = activation_example(role, at="tomorrow 09:00")
    if start < now - timedelta(minutes=1):
        raise PimError(ErrorCode.PARSE, f"'{at}' is in the past.", later)
    if start > now + MAX_SCHEDULE_AHEAD:
        raise PimError(ErrorCode.PARSE, f"'{at}' is more than 30 days ahead.", later)
    return max(start, now)


async def _verify_mfa(ctx: Context, email: str, code: str | None, purpose: str) -> None:
    if ctx.mfa is None:
        raise PimError(ErrorCode.NOT_AVAILABLE, "MFA is not set up on this pimbot.")
    await ctx.mfa.verify(email, code, purpose=purpose)


async def _create(ctx: Context, actor: Actor, role: Role, kind: RequestKind,
                  duration: timedelta, given: ActivationInput, start_at: datetime,
                  plan: ApprovalPlan | None = None) -> Reply:
    async with ctx.db.transaction() as session:
        return await _write(ctx, session, actor, role, kind, duration, given, start_at, plan)


async def _write(ctx: Context, session: AsyncSession, actor: Actor, role: Role,
                 kind: RequestKind, duration: timedelta, given: ActivationInput,
                 start_at: datetime, plan: ApprovalPlan | None = None) -> Reply:
    """The new request, its audit event and its follow-ups, in the caller's transaction."""
    now = ctx.clock.now()
    needs_approval = plan is not None and plan.needs_approval and \
        kind is RequestKind.ACTIVATION
    automatic = plan is not None and plan.automatic
    if plan is not None and plan.ends_by is not None:
        duration = max(min(duration, plan.ends_by - start_at), timedelta(seconds=1))
    row = new_request(
        id=new_request_id(), kind=kind.value, email=actor.email, role=role.name,
        state=(RequestState.PENDING_APPROVAL if needs_approval else RequestState.APPROVED).value,
        duration_s=int(duration.total_seconds()), reason=(given.reason or "").strip(),
        ticket=given.ticket or "", platform=actor.platform, requested_at=now, start_at=start_at,
        min_approvals=approvals_needed(ctx.policy, role, actor.email) if needs_approval else 0,
        approval_due_at=now + role.approval.timeout if needs_approval else None,
        decided_at=None if needs_approval else now,
        decided_by="" if needs_approval else ("break-glass" if kind is RequestKind.BREAKGLASS
                                              else f"rule:{plan.rule}" if plan and automatic
                                              else "policy"),
        rule_note=plan.reason if plan is not None else "",
        votes_count=0,
    )
    if kind is RequestKind.BREAKGLASS:
        await lock_slot(ctx, session, actor.email, role.name)  # one break-glass at a time
        held = await _breakglass_held(session, actor.email, role.name)
        if held is not None:
            raise _BreakglassHeld(held)
    await insert_request(session, row)
    if needs_approval:
        await _follow_up_pending(ctx, session, row, now)
        await schedule_escalations(ctx, session, row)
    else:
        await schedule(session, JobKind.GRANT, start_at, dedupe_key=f"grant:{row.id}",
                       request_id=row.id)
    # The audit chain's lock (PostgreSQL) is taken last, so it is held only for the
    # event's own statements and the commit: concurrent turns wait on it for less.
    await record(ctx, session, actor.email, f"{kind.value}.requested", role.name,
                 request=row.id, duration=format_duration(duration), reason=row.reason,
                 ticket=row.ticket, start_at=start_at.isoformat(),
                 approval_required=needs_approval)
    if plan is not None and automatic and not needs_approval:
        await record_automatic(ctx, session, row, plan, now)
    if kind is RequestKind.BREAKGLASS:
        await _alert_breakglass(ctx, session, row, role, now)
    view = await snapshot(session, ctx.policy, row, votes=())  # new: nobody voted yet
    return Reply(card=requester_card(view), subject=row.id)


async def _follow_up_pending(ctx: Context, session: AsyncSession, row: RequestRow,
                             now: datetime) -> None:
    """The approvers' and channels' cards, the timeout and the reminder: one INSERT."""
    role = ctx.policy.roles[row.role]
    assert row.approval_due_at is not None
    await schedule_all(session, [
        *approver_notices(now, ctx.policy, row.role, row.email, row.id),
        *channel_notices(now, role.notify, View.APPROVAL, row.id),
        job(JobKind.APPROVAL_TIMEOUT, row.approval_due_at, dedupe_key=f"timeout:{row.id}",
            request_id=row.id),
        job(JobKind.REMIND_APPROVERS, now + role.approval.timeout / 2,
            dedupe_key=f"remind-approvers:{row.id}", request_id=row.id),
    ])


async def _alert_breakglass(ctx: Context, session: AsyncSession, row: RequestRow, role: Role,
                            now: datetime) -> None:
    await notify_channels(session, now, role.notify, View.BREAKGLASS, row.id)
    for admin in ctx.policy.admins:
        if admin != row.email:
            await notify_user(session, now, admin, View.BREAKGLASS, row.id)
    await open_breakglass_item(ctx, session, row, now)
