"""Pure decisions with machine-readable reasons: who may approve, what may be requested."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pimbot.domain.durations import format_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.examples import activation_example
from pimbot.domain.model import Policy, Role


class ApprovalVerdict(StrEnum):
    ALLOWED = "allowed"
    SELF_APPROVAL = "self_approval"
    NOT_APPROVER = "not_approver"
    ALREADY_VOTED = "already_voted"


@dataclass(frozen=True)
class ApprovalDecision:
    verdict: ApprovalVerdict
    message: str

    @property
    def allowed(self) -> bool:
        return self.verdict is ApprovalVerdict.ALLOWED


def decide_approver(
    policy: Policy, role: Role, requester: str, actor: str, voted: frozenset[str],
    escalation: int = 0,
) -> ApprovalDecision:
    """May ``actor`` approve or deny ``requester``'s request for ``role`` (escalated
    ``escalation`` steps, whose approvers may answer too)?"""
    if actor == requester:
        return ApprovalDecision(
            ApprovalVerdict.SELF_APPROVAL, "You cannot approve or deny your own request."
        )
    if actor not in policy.approvers_of(role, escalation):
        return ApprovalDecision(
            ApprovalVerdict.NOT_APPROVER, f"You are not an approver for {role.name}."
        )
    if actor in voted:
        return ApprovalDecision(
            ApprovalVerdict.ALREADY_VOTED, "You have already answered this request."
        )
    return ApprovalDecision(ApprovalVerdict.ALLOWED, "")


def approvals_needed(policy: Policy, role: Role, requester: str) -> int:
    """N of M. The requester never counts; when fewer than N others can approve, the request
    is refused rather than quietly asking for fewer (a two-person rule stays two people)."""
    needed = max(1, role.approval.min_approvals)
    others = [a for a in policy.approvers_of(role) if a != requester]
    if len(others) < needed:
        raise PimError(
            ErrorCode.FORBIDDEN,
            f"{role.name} needs {needed} approvals, but only {len(others)} approver(s) other "
            "than you can give them; ask an admin to change the policy.",
        )
    return needed


def bound_duration(
    role: Role, requested: timedelta | None, *, breakglass: bool = False
) -> timedelta:
    limit = role.max_duration
    if breakglass:
        limit = min(limit, role.breakglass.max_duration)
    duration = requested if requested is not None else min(role.default_duration, limit)
    if duration > limit:
        raise PimError(
            ErrorCode.DURATION,
            f"{format_duration(duration)} is over the maximum of {format_duration(limit)} "
            f"for {role.name}",
            activation_example(role, verb="breakglass" if breakglass else "activate",
                               duration=format_duration(limit)),
        )
    if duration <= timedelta(0):
        raise PimError(ErrorCode.DURATION, "the duration must be positive", "for 1h")
    return duration


def check_justification(role: Role, reason: str | None) -> None:
    if role.require_justification and not (reason and reason.strip()):
        raise PimError(
            ErrorCode.JUSTIFICATION,
            f"{role.name} needs a justification",
            activation_example(role),
        )


def check_ticket(role: Role, ticket: str | None) -> None:
    rule = role.require_ticket
    if rule is False:
        return
    if not ticket:
        raise PimError(
            ErrorCode.TICKET,
            f"{role.name} needs a ticket",
            activation_example(role),
        )
    if isinstance(rule, str) and not re.fullmatch(rule, ticket):
        raise PimError(
            ErrorCode.TICKET,
            f"ticket '{ticket}' does not match the pattern {rule} required for {role.name}",
            activation_example(role),
        )
