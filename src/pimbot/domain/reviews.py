"""Access reviews, decided purely: who reviews an item, what pimbot recommends, what happens
to an item at close."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pimbot.domain.model import Policy

DEFAULT_RECOMMEND_AFTER = timedelta(days=30)
DEFAULT_AD_HOC_DURATION = timedelta(days=7)
USAGE_WINDOW = timedelta(days=90)  # "activations in the last 90 days" on every prompt


class ItemKind(StrEnum):
    ASSIGNMENT = "assignment"
    BREAKGLASS = "breakglass"  # a break-glass activation the admins must account for


class Decision(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"


class Outcome(StrEnum):
    KEPT = "kept"
    REMOVED = "removed"


class NoResponse(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"
    RECOMMENDATION = "recommendation"


@dataclass(frozen=True)
class Recommendation:
    decision: Decision
    reason: str


def recommend(assignment_type: str, since: datetime | None, last_activation: datetime | None,
              now: datetime, recommend_after: timedelta) -> Recommendation:
    """Remove eligibility nobody used for ``recommend_after``; keep everything else."""
    if assignment_type != "eligible":
        return Recommendation(Decision.KEEP, "standing (active) assignment: no activations "
                                             "to measure")
    days = recommend_after.days or 1
    if last_activation is None:
        if since is not None and now - since < recommend_after:
            return Recommendation(Decision.KEEP, f"assigned less than {days} days ago")
        return Recommendation(Decision.REMOVE, f"never activated in {days}+ days")
    if now - last_activation >= recommend_after:
        idle = (now - last_activation).days
        return Recommendation(Decision.REMOVE, f"not activated for {idle} days")
    return Recommendation(Decision.KEEP, "activated recently")


def reviewers_of(policy: Policy, reviewers: str, role_name: str, person: str) -> tuple[str, ...]:
    """Who answers an item: the role's approvers, the admins, the person (``self``), or a
    list of people and groups. Nobody reviews their own access unless the campaign is
    ``self``; with nobody left, the admins (but never the person) answer."""
    if reviewers == "self":
        return (person,)
    if reviewers == "approvers":
        role = policy.roles.get(role_name)
        named = policy.approvers_of(role) if role is not None else ()
    elif reviewers == "admins":
        named = policy.admins
    else:
        named = policy.expand(tuple(p for p in reviewers.split(",") if p))
    chosen = tuple(p for p in named if p != person)
    return chosen or tuple(p for p in policy.admins if p != person)


def outcome(decision: str | None, if_no_response: str,
            recommendation: str) -> tuple[Outcome, str]:
    """What an item comes to at close, and why (an answer, or the campaign's rule)."""
    if decision is not None:
        return (Outcome.REMOVED if decision == Decision.REMOVE else Outcome.KEPT), "answered"
    rule = NoResponse(if_no_response)
    if rule is NoResponse.RECOMMENDATION:
        chosen = Decision(recommendation)
    else:
        chosen = Decision.REMOVE if rule is NoResponse.REMOVE else Decision.KEEP
    result = Outcome.REMOVED if chosen is Decision.REMOVE else Outcome.KEPT
    return result, f"no answer (if_no_response: {rule.value})"


def reminder_times(starts_at: datetime, ends_at: datetime) -> tuple[datetime, ...]:
    """Half time, and one day before the end (when that is still after half time)."""
    half = starts_at + (ends_at - starts_at) / 2
    day_before = ends_at - timedelta(days=1)
    return (half, day_before) if day_before > half else (half,)


def period_of(now: datetime, every: timedelta) -> int:
    """The index of the scheduling period ``now`` falls in (periods start at the epoch)."""
    return int(now.timestamp() // every.total_seconds())
