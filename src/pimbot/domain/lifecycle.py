"""Why a request changes state, and what each change brings with it: one table.

Every change of a request's state names its *cause*. The cause decides the target state (from
the current one), the audit action, and who is told. What follows from the target state itself
is the same whatever the cause, and is stated here once too:

- reaching ``ACTIVE`` schedules the expiry (and its reminder);
- reaching ``APPROVED`` schedules the grant (an extension is applied to its parent instead);
- reaching a terminal state releases the grant the request holds, if any: the grant is
  revoked unless another hold of the same person and role still stands on it;
- leaving ``ACTIVE`` is announced to the role's channels ("ended"), and withdraws the
  extension requests still waiting for approval on that activation (``PARENT_ENDED``);
- every change redraws every copy of the request's cards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pimbot.domain.states import RequestState, can_transition, is_terminal

S = RequestState


class Cause(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"  # the requester (or an admin) withdrew a waiting request
    DEACTIVATED = "deactivated"  # the requester (or an admin) ended access early
    GRANTED = "granted"
    GRANT_FAILED = "grant_failed"
    EXPIRED = "expired"
    INELIGIBLE = "ineligible"  # the eligibility behind it ended (unassigned, its end date)
    ASSIGNMENT_ENDED = "assignment_ended"  # an active assignment was removed
    POLICY_CHANGED = "policy_changed"  # its role was removed or its grant changed
    REVIEW_REMOVED = "review_removed"  # an access review removed the assignment behind it
    PARENT_ENDED = "parent_ended"  # the activation an extension request would extend ended


class Announce(StrEnum):
    """What the role's channels hear (beyond "ended", which every end of access brings)."""

    NOTHING = ""
    ACTIVATED = "activated"
    FAILED = "failed"


@dataclass(frozen=True)
class Rule:
    moves: Mapping[RequestState, RequestState]  # current state → target
    audit: str
    tell_requester: bool
    announce: Announce = Announce.NOTHING


_ENDS_ANY = {S.PENDING_APPROVAL: S.CANCELLED, S.APPROVED: S.CANCELLED, S.ACTIVE: S.REVOKED}

RULES: Mapping[Cause, Rule] = {
    Cause.APPROVED: Rule({S.PENDING_APPROVAL: S.APPROVED}, "request.approved", True),
    Cause.DENIED: Rule({S.PENDING_APPROVAL: S.DENIED}, "request.denied", True),
    Cause.TIMED_OUT: Rule({S.PENDING_APPROVAL: S.TIMED_OUT}, "request.timed_out", True),
    Cause.CANCELLED: Rule({S.PENDING_APPROVAL: S.CANCELLED, S.APPROVED: S.CANCELLED},
                          "request.cancelled", False),
    Cause.DEACTIVATED: Rule({S.APPROVED: S.CANCELLED, S.ACTIVE: S.DEACTIVATED},
                            "request.deactivated", False),
    Cause.GRANTED: Rule({S.APPROVED: S.ACTIVE}, "grant.applied", True, Announce.ACTIVATED),
    Cause.GRANT_FAILED: Rule({S.APPROVED: S.FAILED}, "grant.failed", True, Announce.FAILED),
    Cause.EXPIRED: Rule({S.ACTIVE: S.EXPIRED}, "request.expired", False),
    Cause.INELIGIBLE: Rule(_ENDS_ANY, "request.ended_ineligible", True),
    Cause.ASSIGNMENT_ENDED: Rule({S.APPROVED: S.CANCELLED, S.ACTIVE: S.REVOKED},
                                 "request.assignment_ended", True),
    Cause.POLICY_CHANGED: Rule(_ENDS_ANY, "request.policy_changed", True),
    Cause.REVIEW_REMOVED: Rule(_ENDS_ANY, "request.review_removed", True),
    Cause.PARENT_ENDED: Rule({S.PENDING_APPROVAL: S.CANCELLED}, "extension.withdrawn", False),
}

# States a person is told about as a decision on their request (decided_at / decided_by).
DECISIONS = frozenset({S.APPROVED, S.DENIED, S.TIMED_OUT, S.CANCELLED})


def target(cause: Cause, current: RequestState) -> RequestState | None:
    """Where ``cause`` takes a request that is ``current`` (None: it cannot)."""
    return RULES[cause].moves.get(current)


def ends_access(current: RequestState, new: RequestState) -> bool:
    """Leaving ACTIVE for good: the channels are told, the grant is released."""
    return current is S.ACTIVE and is_terminal(new)


def _check_table() -> None:
    for cause, rule in RULES.items():
        for current, new in rule.moves.items():
            if not can_transition(current, new):  # pragma: no cover - a table typo
                raise AssertionError(f"{cause}: {current} → {new} is not a transition")


_check_table()
