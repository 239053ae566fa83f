"""Access-review campaigns: start (ad hoc or on schedule), remind, close and apply.

A campaign covers the eligible and active assignments of its roles at its start, one item
each. At the end (or once every item is answered) the results are applied: a removed
assignment is deleted and every grant it backs ends through the lifecycle (cause
``review_removed``); unanswered items follow ``if_no_response``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.ids import new_request_id, new_row_id
from pimbot.domain.lifecycle import Cause, target
from pimbot.domain.model import AssignmentType, ReviewSchedule, Role
from pimbot.domain.reviews import (
    DEFAULT_AD_HOC_DURATION,
    DEFAULT_RECOMMEND_AFTER,
    USAGE_WINDOW,
    Outcome,
    outcome,
    period_of,
    recommend,
    reminder_times,
    reviewers_of,
)
from pimbot.domain.states import OPEN_STATES, RequestKind, RequestState
from pimbot.store.tables import (
    AssignmentRow,
    RequestRow,
    ReviewCampaignRow,
    ReviewerRow,
    ReviewItemRow,
)
from pimbot.ui.cards import Reply
from pimbot.ui.review_views import PAGE
from pimbot.ui.views import View
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.eligibility import backed
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.permissions import require_admin

log = logging.getLogger(__name__)

OPEN, CLOSED = "open", "closed"


def close_key(campaign_id: str) -> str:
    return f"review-close:{campaign_id}"


async def start_ad_hoc(ctx: Context, actor: Actor, roles: tuple[str, ...],
                       duration: timedelta | None) -> Reply:
    await require_admin(ctx, actor, "review start")
    for name in roles:  # an unknown role is a one-line error with a did-you-mean

        def corrected(role: Role, typed: str = name) -> str:
            return "review start " + " ".join(role.name if r == typed else r for r in roles)

        ctx.role(name, corrected)
    lasting = duration or DEFAULT_AD_HOC_DURATION
    if lasting < timedelta(minutes=1):
        raise PimError(ErrorCode.DURATION, "A review needs at least a minute.",
                       f"review start {' '.join(roles)} for 7d")
    schedule_ = ReviewSchedule(name="ad-hoc", roles=tuple(dict.fromkeys(roles)), every=lasting,
                               duration=lasting, reviewers="approvers")
    campaign = await start_campaign(ctx, schedule_, created_by=actor.email)
    assert campaign is not None
    count = campaign.summary.get("items", 0)
    return Reply(text=f"Started access review {campaign.id} of {', '.join(roles)}: {count} "
                      f"item(s), until {campaign.ends_at:%Y-%m-%d %H:%M} UTC. The reviewers "
                      "have been asked.", subject=campaign.id)


async def start_scheduled(ctx: Context, name: str) -> None:
    """The policy's campaign ``name`` for the current period (once across replicas)."""
    found = next((r for r in ctx.policy.reviews if r.name == name), None)
    if found is None:
        return  # removed from the policy since the job was written
    period = period_of(ctx.clock.now(), found.every)
    await start_campaign(ctx, found, created_by="policy", period_key=f"{name}:{period}")
    await schedule_next_starts(ctx)


async def schedule_next_starts(ctx: Context) -> None:
    """The next start of every campaign in the policy (one job per period: dedupe key)."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        for review in ctx.policy.reviews:
            period = period_of(now, review.every) + 1
            due = datetime.fromtimestamp(period * review.every.total_seconds(), tz=now.tzinfo)
            await schedule(session, JobKind.REVIEW_START, due,
                           dedupe_key=f"review-start:{review.name}:{period}", name=review.name)


async def start_campaign(ctx: Context, review: ReviewSchedule, *, created_by: str,
                         period_key: str | None = None) -> ReviewCampaignRow | None:
    """Create the campaign, its items and its prompts in one transaction. Returns None when
    another replica already started this period's campaign."""
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            campaign = ReviewCampaignRow(
                id=new_row_id("c"), name=review.name, period_key=period_key,
                roles=list(review.roles), reviewers=review.reviewers,
                if_no_response=review.if_no_response,
                recommend_after_s=int((review.recommend_after or DEFAULT_RECOMMEND_AFTER)
                                      .total_seconds()),
                state=OPEN, created_by=created_by, starts_at=now,
                ends_at=now + review.duration, summary={})
            session.add(campaign)
            await session.flush()  # a second replica's insert fails here (period_key)
            items = await _items(ctx, session, campaign, now)
            campaign.summary = {"items": len(items)}
            await record(ctx, session, created_by, "review.started", ",".join(review.roles),
                         campaign=campaign.id, name=review.name, items=len(items),
                         ends_at=campaign.ends_at.isoformat())
            await _prompt(ctx, session, campaign, items, now)
            for at in reminder_times(campaign.starts_at, campaign.ends_at):
                await schedule(session, JobKind.REVIEW_REMIND, at,
                               dedupe_key=f"review-remind:{campaign.id}:{int(at.timestamp())}",
                               campaign_id=campaign.id)
            await schedule(session, JobKind.REVIEW_CLOSE, campaign.ends_at,
                           dedupe_key=close_key(campaign.id), campaign_id=campaign.id)
    except IntegrityError:
        if period_key is None:
            raise
        return None
    return campaign


async def _items(ctx: Context, session: AsyncSession, campaign: ReviewCampaignRow,
                 now: datetime) -> list[ReviewItemRow]:
    assignments = (await session.scalars(select(AssignmentRow).where(
        AssignmentRow.role.in_(campaign.roles), AssignmentRow.removed_at.is_(None),
        or_(AssignmentRow.starts_at.is_(None), AssignmentRow.starts_at <= now),
        or_(AssignmentRow.ends_at.is_(None), AssignmentRow.ends_at > now))
        .order_by(AssignmentRow.role, AssignmentRow.email))).all()
    usage = await _usage(session, campaign.roles, now)
    after = timedelta(seconds=campaign.recommend_after_s)
    items: list[ReviewItemRow] = []
    for row in assignments:
        last, count = usage.get((row.email, row.role), (None, 0))
        advice = recommend(row.type, row.starts_at or row.created_at, last, now, after)
        reviewers = reviewers_of(ctx.policy, campaign.reviewers, row.role, row.email)
        items.append(ReviewItemRow(
            id=new_request_id(), campaign_id=campaign.id, kind="assignment", assignment_id=row.id,
            email=row.email, role=row.role, assignment_type=row.type,
            since=row.starts_at or row.created_at, last_activation_at=last,
            activations_90d=count, recommendation=advice.decision.value,
            recommendation_reason=advice.reason, reviewers=list(reviewers),
            decided_by="", reason="", outcome="", created_at=now, version=1))
    session.add_all(items)
    session.add_all(ReviewerRow(item_id=item.id, email=email)
                    for item in items for email in item.reviewers)
    await session.flush()
    return items


async def _usage(session: AsyncSession, roles: list[str],
                 now: datetime) -> dict[tuple[str, str], tuple[datetime | None, int]]:
    """Per (person, role): the last activation, and how many in the last 90 days."""
    since = now - USAGE_WINDOW
    recent = func.sum(case((RequestRow.granted_at >= since, 1), else_=0))
    rows = await session.execute(select(
        RequestRow.email, RequestRow.role, func.max(RequestRow.granted_at), recent).where(
        RequestRow.role.in_(roles), RequestRow.granted_at.is_not(None),
        RequestRow.kind.in_([RequestKind.ACTIVATION.value, RequestKind.BREAKGLASS.value]))
        .group_by(RequestRow.email, RequestRow.role))
    return {(email, role): (last, int(count or 0)) for email, role, last, count in rows}


async def _prompt(ctx: Context, session: AsyncSession, campaign: ReviewCampaignRow,
                  items: list[ReviewItemRow], now: datetime) -> None:
    """Each reviewer gets a card per item, or one paged list when they have many."""
    per_reviewer: dict[str, list[ReviewItemRow]] = {}
    for item in items:
        for email in item.reviewers:
            per_reviewer.setdefault(email, []).append(item)
    for email, theirs in per_reviewer.items():
        if len(theirs) <= PAGE // 2:
            for item in theirs:
                await schedule(session, JobKind.NOTIFY, now, audience=f"user:{email}",
                               view=View.REVIEW_ITEM.value, request_id=item.id)
        else:
            await schedule(session, JobKind.NOTIFY, now, audience=f"user:{email}",
                           view=View.REVIEW_LIST.value, request_id="", reviewer=email)
    title = f"Access review {campaign.name} ({campaign.id}) started"
    text = (f"{len(items)} assignment(s) of {', '.join(campaign.roles)} to review by "
            f"{campaign.ends_at:%Y-%m-%d %H:%M} UTC ({len(per_reviewer)} reviewer(s)).")
    await _tell_channels(ctx, session, campaign, title, text, now)


async def _tell_channels(ctx: Context, session: AsyncSession, campaign: ReviewCampaignRow,
                         title: str, text: str, now: datetime) -> None:
    channels: dict[str, None] = {}
    for name in campaign.roles:
        role = ctx.policy.roles.get(name)
        channels.update(dict.fromkeys(role.notify if role else ()))
    for channel in channels:
        await schedule(session, JobKind.NOTIFY, now, audience=f"channel:{channel}",
                       view=View.REVIEW_NOTICE.value, request_id=campaign.id, title=title,
                       text=text)


async def remind(ctx: Context, campaign_id: str) -> None:
    """Remind reviewers who have not answered; post progress to the roles' channels."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        campaign = await session.get(ReviewCampaignRow, campaign_id)
        if campaign is None or campaign.state != OPEN:
            return
        waiting = (await session.execute(select(ReviewerRow.email).join(
            ReviewItemRow, ReviewItemRow.id == ReviewerRow.item_id).where(
            ReviewItemRow.campaign_id == campaign.id, ReviewItemRow.decision.is_(None))
            .distinct())).scalars().all()
        for email in waiting:
            await schedule(session, JobKind.NOTIFY, now, audience=f"user:{email}",
                           view=View.REVIEW_LIST.value, request_id="", reviewer=email)
        answered, total = await _progress(session, campaign.id)
        await record(ctx, session, "pimbot", "review.reminded", ",".join(campaign.roles),
                     campaign=campaign.id, reviewers=len(waiting), answered=answered,
                     items=total)
        await _tell_channels(ctx, session, campaign,
                             f"Access review {campaign.name} ({campaign.id}): "
                             f"{answered} of {total} answered",
                             f"It closes at {campaign.ends_at:%Y-%m-%d %H:%M} UTC; "
                             f"{len(waiting)} reviewer(s) were reminded.", now)


async def _progress(session: AsyncSession, campaign_id: str) -> tuple[int, int]:
    total = int(await session.scalar(select(func.count()).select_from(ReviewItemRow).where(
        ReviewItemRow.campaign_id == campaign_id)) or 0)
    answered = int(await session.scalar(select(func.count()).select_from(ReviewItemRow).where(
        ReviewItemRow.campaign_id == campaign_id, ReviewItemRow.decision.is_not(None))) or 0)
    return answered, total


async def close(ctx: Context, campaign_id: str) -> None:
    """Apply the results (once: the campaign moves from open to closed in this transaction)."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        closed = await session.execute(update(ReviewCampaignRow).where(
            ReviewCampaignRow.id == campaign_id, ReviewCampaignRow.state == OPEN).values(
            state=CLOSED, closed_at=now).execution_options(synchronize_session=False))
        if getattr(closed, "rowcount", 0) != 1:
            return  # closed already (by another replica, or once every item was answered)
        campaign = await session.get(ReviewCampaignRow, campaign_id, populate_existing=True)
        assert campaign is not None
        items = (await session.scalars(select(ReviewItemRow).where(
            ReviewItemRow.campaign_id == campaign_id, ReviewItemRow.applied_at.is_(None))
            .order_by(ReviewItemRow.created_at))).all()
        tally: Counter[str] = Counter()
        for item in items:
            result, why = outcome(item.decision, campaign.if_no_response, item.recommendation)
            tally[result.value] += 1
            tally["unanswered"] += item.decision is None
            item.outcome, item.applied_at = result.value, now
            await record(ctx, session, item.decided_by or "review", "review.item_closed",
                         item.role, campaign=campaign.id, item=item.id, user=item.email,
                         outcome=result.value, why=why)
            if result is Outcome.REMOVED:
                await _remove(ctx, session, campaign, item, why, now)
        campaign.summary = {**campaign.summary, **tally}
        await session.flush()
        await record(ctx, session, "pimbot", "review.closed", ",".join(campaign.roles),
                     campaign=campaign.id, counts=dict(tally))
        await _tell_channels(
            ctx, session, campaign, f"Access review {campaign.name} ({campaign.id}) closed",
            f"{tally['kept']} kept, {tally['removed']} removed ({tally['unanswered']} "
            f"unanswered, decided by if_no_response: {campaign.if_no_response}).", now)


async def _remove(ctx: Context, session: AsyncSession, campaign: ReviewCampaignRow,
                  item: ReviewItemRow, why: str, now: datetime) -> None:
    """Delete the assignment; end every request it backs; tell the person why."""
    assignment = await session.get(AssignmentRow, item.assignment_id or "")
    if assignment is None or assignment.removed_at is not None:
        return
    assignment.removed_at = now
    assignment.removed_by_review = campaign.id
    assignment.review_hold = assignment.source == "policy"
    await session.flush()
    # pimbot's words only: the reviewer's typed reason is shown apart, as theirs
    how = f"answered by {item.decided_by}" if item.decided_by else why
    note = f"removed by access review {campaign.name} ({campaign.id}), {how}"
    requests = (await session.scalars(select(RequestRow).where(
        RequestRow.email == item.email, RequestRow.role == item.role,
        RequestRow.state.in_([s.value for s in OPEN_STATES])))).all()
    for row in requests:
        backs = row.assignment_id == assignment.id or (
            row.kind != RequestKind.ASSIGNMENT.value and not await backed(session, row, now))
        if backs and target(Cause.REVIEW_REMOVED, RequestState(row.state)) is not None:
            await move(ctx, session, row, Cause.REVIEW_REMOVED, actor="review", note=note,
                       campaign=campaign.id)
    kind = "eligibility for" if assignment.type == AssignmentType.ELIGIBLE.value \
        else "standing access to"
    await schedule(session, JobKind.NOTIFY, now, audience=f"user:{item.email}",
                   view=View.REVIEW_NOTICE.value, request_id=item.id,
                   title=f"Your {kind} {item.role} was removed",
                   text=f"Access review {campaign.name} ({campaign.id}) removed it ({how}). "
                        "Ask an admin if you still need it.",
                   reason_from=item.decided_by, reason=item.reason)

