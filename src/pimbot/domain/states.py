"""The activation request's life as a transition table."""

from __future__ import annotations

from enum import StrEnum


class RequestKind(StrEnum):
    ACTIVATION = "activation"
    BREAKGLASS = "breakglass"
    EXTENSION = "extension"
    ASSIGNMENT = "assignment"  # an active assignment, granted and revoked like an activation


class RequestState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"  # approved (or needing no approval), waiting for its start / grant
    ACTIVE = "active"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"
    DENIED = "denied"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


S = RequestState

TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.DENIED, S.CANCELLED, S.TIMED_OUT}),
    S.APPROVED: frozenset({S.ACTIVE, S.FAILED, S.CANCELLED, S.REVOKED}),
    S.ACTIVE: frozenset({S.EXPIRED, S.DEACTIVATED, S.REVOKED}),
    S.EXPIRED: frozenset(),
    S.DEACTIVATED: frozenset(),
    S.REVOKED: frozenset(),
    S.DENIED: frozenset(),
    S.CANCELLED: frozenset(),
    S.TIMED_OUT: frozenset(),
    S.FAILED: frozenset(),
}

OPEN_STATES: frozenset[RequestState] = frozenset({S.PENDING_APPROVAL, S.APPROVED, S.ACTIVE})
# States in which a request holds (or is about to hold) the grant at its provider.
HOLDING_STATES: frozenset[RequestState] = frozenset({S.ACTIVE})
# Terminal states reached from ACTIVE: the provider grant must be revoked.
ENDED_STATES: frozenset[RequestState] = frozenset({S.EXPIRED, S.DEACTIVATED, S.REVOKED})


def can_transition(current: RequestState, target: RequestState) -> bool:
    return target in TRANSITIONS[current]


def is_terminal(state: RequestState) -> bool:
    return not TRANSITIONS[state]
