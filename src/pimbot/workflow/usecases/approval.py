"""Approving and denying: every click re-checks who pressed and the request's current state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.decisions import ApprovalVerdict, decide_approver
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.states import RequestKind, RequestState
from pimbot.store.tables import RequestRow, VoteRow
from pimbot.ui.cards import Reply
from pimbot.ui.views import View, state_words
from pimbot.workflow import forms
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.eligibility import backed, end_request
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import JobKind, notify_user, refresh_cards, schedule
from pimbot.workflow.records import get_request, snapshot, votes_of
from pimbot.workflow.usecases.extension import apply_extension


async def _precheck(ctx: Context, actor: Actor, request_id: str,
                    action: str) -> tuple[Reply | None, RequestRow]:
    """Refuse (and audit) a click by the wrong person or on a decided request, early."""
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        refusal = await _refusal(ctx, session, actor, row, action)
    return refusal, row


async def _refusal(ctx: Context, session: AsyncSession, actor: Actor, row: RequestRow,
                   action: str) -> Reply | None:
    if row.state != RequestState.PENDING_APPROVAL.value:
        view = await snapshot(session, ctx.policy, row)
        who = f" by {row.decided_by}" if row.decided_by else ""
        await record(ctx, session, actor.email, f"{action}.refused", row.role, "refused",
                     request=row.id, reason="already_decided", state=row.state)
        prefix = forms.prefix_for(actor.platform)
        return Reply(ok=False, text=f"Request {row.id} is already {state_words(view)}{who}; "
                                    f"nothing was changed. try: {prefix}pending")
    role = ctx.policy.roles.get(row.role)
    if role is None:
        raise PimError(ErrorCode.UNKNOWN_ROLE, f"Role {row.role} is no longer in the policy.")
    now = ctx.clock.now()
    if row.approval_due_at is not None and now >= row.approval_due_at:
        # The timeout job has not run yet (worker behind or down): the deadline still holds.
        move(row, RequestState.TIMED_OUT, decided_at=now)
        await session.flush()
        await record(ctx, session, "pimbot", "request.timed_out", row.role, request=row.id,
                     user=row.email)
        await notify_user(session, now, row.email, View.REQUESTER, row.id)
        await refresh_cards(session, now, row.id)
        return Reply(ok=False, text=f"Request {row.id} timed out before your answer; nothing "
                                    "was approved.")
    if not await backed(session, row, now):
        await end_request(ctx, session, row, now, "no longer eligible")
        return Reply(ok=False, text=f"{row.email} is no longer eligible for {row.role}, so "
                                    f"request {row.id} was cancelled; nothing was approved.")
    voted = frozenset(v.approver for v in await votes_of(session, row.id))
    decision = decide_approver(ctx.policy, role, row.email, actor.email, voted)
    if decision.allowed:
        return None
    await record(ctx, session, actor.email, f"{action}.refused", row.role, "refused",
                 request=row.id, reason=decision.verdict.value, requester=row.email)
    hint = f"{forms.prefix_for(actor.platform)}pending"
    return Reply(ok=False, text=f"{decision.message} Nothing was changed. try: {hint}")


async def click_approve(ctx: Context, actor: Actor, request_id: str) -> Reply:
    refusal, row = await _precheck(ctx, actor, request_id, "approval")
    if refusal is not None:
        return refusal
    if ctx.policy.roles[row.role].approval.require_mfa:
        prefix = forms.prefix_for(actor.platform)
        return Reply(ok=False, form=forms.approve_code_form(row.id),
                     text=f"Approving {row.id} needs your authenticator code. "
                          f"try: {prefix}approve {row.id} code 123456")
    return await _vote(ctx, actor, row.id, "approve", "")


async def click_deny(ctx: Context, actor: Actor, request_id: str) -> Reply:
    refusal, _ = await _precheck(ctx, actor, request_id, "denial")
    if refusal is not None:
        return refusal
    prefix = forms.prefix_for(actor.platform)
    return Reply(ok=False, form=forms.deny_form(request_id.lower()),
                 text=f"Denying needs a reason. try: {prefix}deny {request_id.lower()} "
                      "reason not during the freeze")


async def approve(ctx: Context, actor: Actor, request_id: str, comment: str | None,
                  code: str | None) -> Reply:
    refusal, row = await _precheck(ctx, actor, request_id, "approval")
    if refusal is not None:
        return refusal
    if ctx.policy.roles[row.role].approval.require_mfa:
        if ctx.mfa is None:
            raise PimError(ErrorCode.NOT_AVAILABLE, "MFA is not set up on this pimbot.")
        await ctx.mfa.verify(actor.email, code, purpose=f"approve {row.id}")
    return await _vote(ctx, actor, row.id, "approve", comment or "")


async def deny(ctx: Context, actor: Actor, request_id: str, reason: str) -> Reply:
    if not reason.strip():
        raise PimError(ErrorCode.JUSTIFICATION, "Denying needs a reason.",
                       f"deny {request_id} reason not during the freeze")
    return await _vote(ctx, actor, request_id, "deny", reason.strip())


async def _vote(ctx: Context, actor: Actor, request_id: str, decision: str,
                note: str) -> Reply:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        action = "approval" if decision == "approve" else "denial"
        refusal = await _refusal(ctx, session, actor, row, action)
        if refusal is not None:
            return refusal
        session.add(VoteRow(request_id=row.id, approver=actor.email, decision=decision,
                            comment=note, at=now))
        row.votes_count += 1
        approvals = sum(1 for v in await votes_of(session, row.id) if v.decision == "approve")
        if decision == "deny":
            _decide(row, RequestState.DENIED, actor.email, note, now)
        elif approvals >= row.min_approvals:
            _decide(row, RequestState.APPROVED, actor.email, note, now)
        await session.flush()
        await record(ctx, session, actor.email, f"request.{decision}d", row.role,
                     request=row.id, requester=row.email, state=row.state)
        await _after_vote(ctx, session, row, now)
        view = await snapshot(session, ctx.policy, row)
    done = {"approve": "Approved", "deny": "Denied"}[decision]
    return Reply(text=f"{done} request {row.id} ({row.email} → {row.role}); "
                      f"it is now {state_words(view)}.")


def _decide(row: RequestRow, state: RequestState, who: str, note: str, now: datetime) -> None:
    move(row, state, decided_by=who, decided_at=now, decision_note=note)


async def _after_vote(ctx: Context, session: AsyncSession, row: RequestRow,
                      now: datetime) -> None:
    await refresh_cards(session, now, row.id)
    if row.state == RequestState.PENDING_APPROVAL.value:
        return
    starts_later = row.start_at > now
    if row.state != RequestState.APPROVED.value or starts_later or \
            row.kind == RequestKind.EXTENSION.value:
        await notify_user(session, now, row.email, View.REQUESTER, row.id)  # else: the grant will
    if row.state != RequestState.APPROVED.value:
        return
    if row.kind == RequestKind.EXTENSION.value:
        await apply_extension(ctx, session, row, now)
    else:
        await schedule(session, JobKind.GRANT, max(row.start_at, now),
                       dedupe_key=f"grant:{row.id}", request_id=row.id)


__all__ = ["ApprovalVerdict", "approve", "click_approve", "click_deny", "deny"]
