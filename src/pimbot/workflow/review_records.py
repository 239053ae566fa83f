"""Reading review items: rows, snapshots for the views, and what waits for a reviewer."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.store.tables import RequestRow, ReviewCampaignRow, ReviewerRow, ReviewItemRow
from pimbot.ui.review_views import PAGE, ReviewItemSnapshot


async def get_item(session: AsyncSession, item_id: str) -> ReviewItemRow:
    row = await session.get(ReviewItemRow, item_id.strip().lower())
    if row is None:
        raise PimError(ErrorCode.UNKNOWN_REQUEST, f"There is no review item '{item_id}'; "
                       "reviews lists the items waiting for you.", "reviews")
    return row


async def item_snapshot(session: AsyncSession, row: ReviewItemRow) -> ReviewItemSnapshot:
    campaign = await session.get(ReviewCampaignRow, row.campaign_id) if row.campaign_id \
        else None
    reason = ""
    if row.request_id is not None:
        request = await session.get(RequestRow, row.request_id)
        reason = request.reason if request is not None else ""
    return ReviewItemSnapshot(
        id=row.id, kind=row.kind, campaign=campaign.name if campaign else "",
        email=row.email, role=row.role, assignment_type=row.assignment_type, since=row.since,
        last_activation_at=row.last_activation_at, activations_90d=row.activations_90d,
        recommendation=row.recommendation, recommendation_reason=row.recommendation_reason,
        decision=row.decision, decided_by=row.decided_by, decided_at=row.decided_at,
        reason=row.reason, outcome=row.outcome,
        ends_at=campaign.ends_at if campaign else None, request_id=row.request_id,
        breakglass_reason=reason)


def _waiting_for(email: str):  # type: ignore[no-untyped-def]
    return (ReviewItemRow.id == ReviewerRow.item_id, ReviewerRow.email == email,
            ReviewItemRow.decision.is_(None), ReviewItemRow.outcome == "")


async def waiting_for(session: AsyncSession, email: str,
                      limit: int = PAGE) -> tuple[list[ReviewItemSnapshot], int]:
    """The first ``limit`` open items ``email`` may answer (oldest first), and how many."""
    total = int(await session.scalar(select(func.count()).select_from(ReviewItemRow).join(
        ReviewerRow, ReviewerRow.item_id == ReviewItemRow.id).where(*_waiting_for(email)))
        or 0)
    rows = (await session.scalars(select(ReviewItemRow).join(
        ReviewerRow, ReviewerRow.item_id == ReviewItemRow.id).where(*_waiting_for(email))
        .order_by(ReviewItemRow.created_at, ReviewItemRow.id).limit(limit))).all()
    return [await item_snapshot(session, row) for row in rows], total


async def is_reviewer(session: AsyncSession, item_id: str, email: str) -> bool:
    return await session.get(ReviewerRow, (item_id, email)) is not None
