"""Approving and denying: every click re-checks who pressed and the request's current state."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.decisions import ApprovalVerdict, decide_approver
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.lifecycle import Cause
from pimbot.domain.states import RequestKind, RequestState
from pimbot.store.prepared import Prepared, run
from pimbot.store.tables import RequestRow, VoteRow
from pimbot.store.versioned import write_row
from pimbot.ui.cards import FollowUp, Reply
from pimbot.ui.views import how_it_ended, state_words
from pimbot.workflow import forms
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.eligibility import backed
from pimbot.workflow.lifecycle.holds import lock_slot
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import refresh_cards
from pimbot.workflow.permissions import outsider
from pimbot.workflow.records import get_request, snapshot, votes_of
from pimbot.workflow.usecases.extension import apply_extension
from pimbot.workflow.usecases.unneeded_code import note_unneeded_code

_INSERT_VOTE = Prepared(insert(VoteRow.__table__))  # type: ignore[arg-type]  # built once


async def _precheck(ctx: Context, actor: Actor, request_id: str,
                    action: str) -> tuple[Reply | None, RequestRow]:
    """Refuse (and audit) a click by the wrong person or on a decided request, early."""
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        refusal, _ = await _refusal(ctx, session, actor, row, action)
    return refusal, row


async def _refusal(ctx: Context, session: AsyncSession, actor: Actor, row: RequestRow,
                   action: str) -> tuple[Reply | None, list[VoteRow]]:
    """The (audited) refusal of this person's decision, if any, and the request's votes (as
    read for the check: the caller need not read them again). Someone with no part in the
    request learns nothing of it from the refusal: not its state, role or requester."""
    if outsider(ctx.policy, actor.email, row):
        await record(ctx, session, actor.email, f"{action}.refused", row.role, "refused",
                     request=row.id, reason="not_approver", requester=row.email)
        return Reply(ok=False, text=f"You are not an approver of request {row.id}. Nothing "
                                    "was changed.", hint=FollowUp.PENDING), []
    if row.state != RequestState.PENDING_APPROVAL.value:
        view = await snapshot(session, ctx.policy, row)
        await record(ctx, session, actor.email, f"{action}.refused", row.role, "refused",
                     request=row.id, reason="already_decided", state=row.state)
        return Reply(ok=False, text=f"Request {row.id} {how_it_ended(view)}. Nothing was "
                                    "changed.", hint=FollowUp.PENDING, subject=row.id), []
    role = ctx.policy.roles.get(row.role)
    if role is None:
        raise PimError(ErrorCode.UNKNOWN_ROLE, f"Role {row.role} is no longer in the policy.")
    now = ctx.clock.now()
    if row.approval_due_at is not None and now >= row.approval_due_at:
        # The timeout job has not run yet (worker behind or down): the deadline still holds.
        await move(ctx, session, row, Cause.TIMED_OUT)
        return Reply(ok=False, text=f"Request {row.id} timed out before your answer; nothing "
                                    "was approved."), []
    if not await backed(session, row, now):
        await move(ctx, session, row, Cause.INELIGIBLE, note="no longer eligible")
        return Reply(ok=False, text=f"{row.email} is no longer eligible for {row.role}, so "
                                    f"request {row.id} was cancelled; nothing was approved."), []
    votes = await votes_of(session, row.id)
    voted = frozenset(v.approver for v in votes)
    decision = decide_approver(ctx.policy, role, row.email, actor.email, voted, row.escalation)
    if decision.allowed:
        return None, votes
    await record(ctx, session, actor.email, f"{action}.refused", row.role, "refused",
                 request=row.id, reason=decision.verdict.value, requester=row.email)
    return Reply(ok=False, text=f"{decision.message} Nothing was changed.", hint=FollowUp.PENDING,
                 subject=row.id), votes


async def click_approve(ctx: Context, actor: Actor, request_id: str) -> Reply:
    """The Approve button: the checks, the vote and the decision in one transaction (for a
    role whose approvers give a code, the checks and then the code form)."""
    return await _vote(ctx, actor, request_id, "approve", "", code_form=True)


async def click_deny(ctx: Context, actor: Actor, request_id: str) -> Reply:
    refusal, _ = await _precheck(ctx, actor, request_id, "denial")
    if refusal is not None:
        return refusal
    return Reply(ok=False, form=forms.deny_form(request_id.lower()),
                 text="Denying needs a reason.",
                 hint=f"deny {request_id.lower()} reason not during the freeze",
                 subject=request_id.lower())


async def approve(ctx: Context, actor: Actor, request_id: str, comment: str | None,
                  code: str | None) -> Reply:
    refusal, row = await _precheck(ctx, actor, request_id, "approval")
    if refusal is not None:
        return refusal
    needed = ctx.policy.roles[row.role].approval.require_mfa
    if needed:
        if ctx.mfa is None:
            raise PimError(ErrorCode.NOT_AVAILABLE, "MFA is not set up on this pimbot.")
        await ctx.mfa.verify(actor.email, code, purpose=f"approve {row.id}")
    return note_unneeded_code(await _vote(ctx, actor, row.id, "approve", comment or ""), code,
                              needed, f"Approving a {row.role} request")


async def deny(ctx: Context, actor: Actor, request_id: str, reason: str) -> Reply:
    if not reason.strip():
        raise PimError(ErrorCode.JUSTIFICATION, "Denying needs a reason.",
                       f"deny {request_id} reason not during the freeze")
    return await _vote(ctx, actor, request_id, "deny", reason.strip())


async def _vote(ctx: Context, actor: Actor, request_id: str, decision: str,
                note: str, *, code_form: bool = False) -> Reply:
    """Check, vote and decide in one transaction. ``code_form``: a role whose approvers give
    a code answers with the code form after the checks, and votes nothing."""
    now = ctx.clock.now()
    unapplied = ""
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        # One lock order everywhere (the person's slot, then the request row, then the
        # audit chain): the vote's row update comes after the slot a cancel also takes.
        await lock_slot(ctx, session, row.email, row.role)
        action = "approval" if decision == "approve" else "denial"
        refusal, votes = await _refusal(ctx, session, actor, row, action)
        if refusal is not None:
            return refusal
        if code_form and ctx.policy.roles[row.role].approval.require_mfa:
            return Reply(ok=False, form=forms.approve_code_form(row.id),
                         text=f"Approving {row.id} needs your authenticator code.",
                         hint=f"approve {row.id} code 123456", subject=row.id)
        vote = VoteRow(request_id=row.id, approver=actor.email, decision=decision,
                       comment=note, at=now)
        # A second vote of the same person (a double click) fails here on the primary key
        # and the turn is retried against the vote that committed.
        await run(session, _INSERT_VOTE, {
            "request_id": vote.request_id, "approver": vote.approver,
            "decision": vote.decision, "comment": vote.comment, "at": vote.at},
            autoflush=False)  # as the connection-level execute it replaces
        votes = [*votes, vote]
        row.votes_count += 1
        approvals = sum(1 for v in votes if v.decision == "approve")
        if decision == "deny":
            await move(ctx, session, row, Cause.DENIED, actor=actor.email, note=note,
                       requester=row.email)
        elif approvals >= row.min_approvals:
            # The approver's comment is the vote's (a field of its own on every card) and the
            # audit event's, never the request's decision note: that note is pimbot's words
            # about how the request ended, and a later cancel would quote it as such.
            await move(ctx, session, row, Cause.APPROVED, actor=actor.email,
                       requester=row.email, **({"reason": note} if note else {}))
            if row.kind == RequestKind.EXTENSION.value:
                unapplied = await apply_extension(ctx, session, row, now)
        else:
            await write_row(session, row)  # the compare-and-set on votes_count
            await record(ctx, session, actor.email, "request.approved", row.role,
                         request=row.id, user=row.email, requester=row.email,
                         state=row.state, approvals=approvals)
            await refresh_cards(session, now, row.id)
        view = await snapshot(session, ctx.policy, row, votes)
    done = {"approve": "Approved", "deny": "Denied"}[decision]
    now_is = f"but {unapplied}" if unapplied else f"it is now {state_words(view)}"
    return Reply(ok=not unapplied, text=f"{done} request {row.id} ({row.email} → {row.role}); "
                                        f"{now_is}.", subject=row.id)


__all__ = ["ApprovalVerdict", "approve", "click_approve", "click_deny", "deny"]
