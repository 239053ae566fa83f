"""Answering access reviews: what waits for me, keep, remove (with a reason), accept the
recommendations; and the break-glass follow-up every break-glass opens for the admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import AuditNote, ErrorCode, PimError
from pimbot.domain.ids import new_request_id
from pimbot.domain.reviews import Decision, reviewers_of
from pimbot.domain.typed_text import TEXT_LIMIT
from pimbot.scheduling.queue import reschedule
from pimbot.store.tables import RequestRow, ReviewCampaignRow, ReviewerRow, ReviewItemRow
from pimbot.ui.cards import ActionId, FollowUp, Form, Input, InputKind, Reply
from pimbot.ui.review_views import review_item_card, review_list_card
from pimbot.ui.views import View
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.outbox import JobKind, refresh_cards, schedule
from pimbot.workflow.review_records import get_item, is_reviewer, item_snapshot, waiting_for
from pimbot.workflow.usecases.review_campaigns import OPEN, close_key


async def reviews(ctx: Context, actor: Actor) -> Reply:
    async with ctx.db.read() as session:
        items, total = await waiting_for(session, actor.email)
    if not total:
        return Reply(text="No access-review items wait for you.")
    return Reply(text=f"{total} review item(s) wait for your answer.",
                 card=review_list_card(items, total))


def _remove_form(item_id: str, breakglass: bool) -> Form:
    label = "Why was it not justified?" if breakglass else "Why remove it?"
    return Form(title="Not justified" if breakglass else "Remove access",
                submit=ActionId.SUBMIT_REVIEW_REMOVE, submit_label="Submit",
                inputs=(Input("reason", label, InputKind.MULTILINE, max_length=TEXT_LIMIT),),
                value=item_id)


async def click_remove(ctx: Context, actor: Actor, item_id: str) -> Reply:
    """Remove asks for a reason first (a form; the console says how to type it), of the
    item's reviewers only, while it is open: anyone else is refused before the form, which
    would tell them what kind of item it is."""
    async with ctx.db.read() as session:
        item = await get_item(session, item_id)
        await _answerable(ctx, session, actor, item)
    return Reply(ok=False, form=_remove_form(item.id, item.kind == "breakglass"),
                 text="Removing needs a reason.",
                 hint=f"review remove {item.id} reason left the team", subject=item.id)


async def decide(ctx: Context, actor: Actor, item_id: str, decision: Decision,
                 reason: str | None) -> Reply:
    if decision is Decision.REMOVE and not (reason and reason.strip()):
        raise PimError(ErrorCode.JUSTIFICATION, "Removing needs a reason.",
                       f"review remove {item_id} reason left the team")
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        item = await get_item(session, item_id)
        await _answerable(ctx, session, actor, item)
        await _answer(ctx, session, actor, item, decision, (reason or "").strip(), now)
        view = await item_snapshot(session, item)
    return Reply(text=f"Recorded: {decision.value} for {item.email} on {item.role}.",
                 card=review_item_card(view), subject=item.id)


async def accept_recommendations(ctx: Context, actor: Actor) -> Reply:
    """Take pimbot's recommendation on every open item waiting for the actor."""
    now = ctx.clock.now()
    answered = {Decision.KEEP: 0, Decision.REMOVE: 0}
    async with ctx.db.transaction() as session:
        rows = (await session.scalars(select(ReviewItemRow).join(
            ReviewerRow, ReviewerRow.item_id == ReviewItemRow.id).where(
            ReviewerRow.email == actor.email, ReviewItemRow.decision.is_(None),
            ReviewItemRow.outcome == "", ReviewItemRow.kind == "assignment"))).all()
        for item in rows:
            if not await _campaign_open(session, item):
                continue
            decision = Decision(item.recommendation)
            await _answer(ctx, session, actor, item, decision,
                          f"accepted pimbot's recommendation: {item.recommendation_reason}",
                          now)
            answered[decision] += 1
    if not sum(answered.values()):
        return Reply(text="No review items with a recommendation wait for you.")
    return Reply(text=f"Accepted the recommendations: {answered[Decision.KEEP]} kept, "
                      f"{answered[Decision.REMOVE]} to be removed when the review closes.")


async def _campaign_open(session: AsyncSession, item: ReviewItemRow) -> bool:
    if item.campaign_id is None:
        return True
    campaign = await session.get(ReviewCampaignRow, item.campaign_id)
    return campaign is not None and campaign.state == OPEN


async def _answerable(ctx: Context, session: AsyncSession, actor: Actor,
                      item: ReviewItemRow) -> None:
    """Only the item's reviewers, only while it is open; every refusal audited."""
    def refuse(reason: str, message: str) -> PimError:
        return PimError(ErrorCode.FORBIDDEN if reason == "not_reviewer" else ErrorCode.STATE,
                        message, FollowUp.REVIEWS, audit=AuditNote(
                            "review.refused", item.role, {"item": item.id, "reason": reason}))

    if not await is_reviewer(session, item.id, actor.email):
        raise refuse("not_reviewer", f"You are not a reviewer of item {item.id}.")
    if item.decision is not None or item.outcome or not await _campaign_open(session, item):
        raise refuse("already_answered", f"Item {item.id} is already answered"
                     + (f" by {item.decided_by}" if item.decided_by else "")
                     + "; nothing was changed.")


async def _answer(ctx: Context, session: AsyncSession, actor: Actor, item: ReviewItemRow,
                  decision: Decision, reason: str, now: datetime) -> None:
    item.decision, item.decided_by, item.decided_at, item.reason = (
        decision.value, actor.email, now, reason)
    if item.kind == "breakglass":
        item.outcome, item.applied_at = decision.value, now
    await session.flush()  # the compare-and-set on the item's version
    words = decision.value if item.kind == "assignment" else (
        "justified" if decision is Decision.KEEP else "not justified")
    await record(ctx, session, actor.email, "review.decided", item.role, item=item.id,
                 campaign=item.campaign_id, user=item.email, decision=words,
                 **({"reason": reason} if reason else {}))
    await refresh_cards(session, now, item.id)
    if item.kind == "breakglass" and decision is Decision.REMOVE:
        await _breakglass_not_justified(ctx, session, item, reason, now)
    if item.campaign_id is not None and not await _open_items(session, item.campaign_id):
        await reschedule(session, close_key(item.campaign_id), now)  # all answered: close now


async def _open_items(session: AsyncSession, campaign_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(ReviewItemRow).where(
        ReviewItemRow.campaign_id == campaign_id, ReviewItemRow.decision.is_(None))) or 0)


async def _breakglass_not_justified(ctx: Context, session: AsyncSession, item: ReviewItemRow,
                                    reason: str, now: datetime) -> None:
    role = ctx.policy.roles.get(item.role)
    title = f"Break-glass of {item.role} by {item.email} was NOT justified"
    text = f"{item.decided_by} found request {item.request_id} not justified."
    for channel in role.notify if role else ():
        await schedule(session, JobKind.NOTIFY, now, audience=f"channel:{channel}",
                       view=View.REVIEW_NOTICE.value, request_id=item.id, title=title,
                       text=text, reason_from=item.decided_by, reason=reason)
    for admin in ctx.policy.admins:
        await schedule(session, JobKind.NOTIFY, now, audience=f"user:{admin}",
                       view=View.REVIEW_NOTICE.value, request_id=item.id, title=title,
                       text=text, reason_from=item.decided_by, reason=reason)


async def open_breakglass_item(ctx: Context, session: AsyncSession, row: RequestRow,
                               now: datetime) -> None:
    """Every break-glass opens a follow-up item for the admins at once."""
    reviewers = reviewers_of(ctx.policy, "admins", row.role, row.email)
    item = ReviewItemRow(
        id=new_request_id(), campaign_id=None, kind="breakglass", request_id=row.id,
        email=row.email,
        role=row.role, assignment_type="", since=now, activations_90d=0,
        recommendation=Decision.KEEP.value, recommendation_reason="", reviewers=list(reviewers),
        decided_by="", reason="", outcome="", created_at=now, version=1)
    session.add(item)
    session.add_all(ReviewerRow(item_id=item.id, email=email) for email in reviewers)
    await session.flush()
    await record(ctx, session, "pimbot", "breakglass.review_required", row.role,
                 request=row.id, user=row.email, item=item.id)
    for email in reviewers:
        await schedule(session, JobKind.NOTIFY, now, audience=f"user:{email}",
                       view=View.REVIEW_ITEM.value, request_id=item.id)


__all__ = ["accept_recommendations", "click_remove", "decide", "open_breakglass_item",
           "reviews"]
