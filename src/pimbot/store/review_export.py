"""Evidence of an access review for auditors (PCI-DSS 7.2.4, SOX): every item, decision,
reviewer, reason and time, as JSON lines or CSV."""

from __future__ import annotations

import csv
import json
from typing import Any, Literal, TextIO

from sqlalchemy import select

from pimbot.store.audit_log import inert_cell
from pimbot.store.database import Database
from pimbot.store.tables import ReviewCampaignRow, ReviewItemRow

COLUMNS = (
    "campaign", "campaign_name", "item", "kind", "person", "role", "assignment_type", "since",
    "last_activation", "activations_90d", "recommendation", "recommendation_reason",
    "reviewers", "decision", "decided_by", "decided_at", "reason", "outcome", "applied_at",
    "campaign_started", "campaign_ends", "campaign_closed",
)


class UnknownReview(LookupError):
    pass


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def item_record(campaign: ReviewCampaignRow, item: ReviewItemRow) -> dict[str, Any]:
    return {
        "campaign": campaign.id, "campaign_name": campaign.name, "item": item.id,
        "kind": item.kind, "person": item.email, "role": item.role,
        "assignment_type": item.assignment_type, "since": _time(item.since),
        "last_activation": _time(item.last_activation_at),
        "activations_90d": item.activations_90d, "recommendation": item.recommendation,
        "recommendation_reason": item.recommendation_reason,
        "reviewers": " ".join(item.reviewers), "decision": item.decision or "",
        "decided_by": item.decided_by, "decided_at": _time(item.decided_at),
        "reason": item.reason, "outcome": item.outcome, "applied_at": _time(item.applied_at),
        "campaign_started": _time(campaign.starts_at), "campaign_ends": _time(campaign.ends_at),
        "campaign_closed": _time(campaign.closed_at),
    }


async def export_review(db: Database, campaign_id: str, fmt: Literal["jsonl", "csv"],
                        out: TextIO) -> int:
    """Write every item of the campaign; returns how many. Raises UnknownReview."""
    async with db.read() as session:
        campaign = await session.get(ReviewCampaignRow, campaign_id.strip().lower())
        if campaign is None:
            raise UnknownReview(campaign_id)
        items = (await session.scalars(select(ReviewItemRow).where(
            ReviewItemRow.campaign_id == campaign.id)
            .order_by(ReviewItemRow.role, ReviewItemRow.email))).all()
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for item in items:
        record = item_record(campaign, item)
        if writer is not None:
            writer.writerow({k: inert_cell(v) for k, v in record.items()})
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(items)
