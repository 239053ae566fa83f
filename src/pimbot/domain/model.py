"""Policy-level entities: roles, approval rules, assignments, reviews (frozen, pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class AssignmentType(StrEnum):
    ELIGIBLE = "eligible"
    ACTIVE = "active"


class WhoisVisibility(StrEnum):
    """Who may ask ``whois ROLE`` (the policy's ``whois:``)."""

    PRIVILEGED = "privileged"  # admins, auditors and the role's approvers
    EVERYONE = "everyone"


@dataclass(frozen=True)
class ApprovalRule:
    required: bool = False
    approvers: tuple[str, ...] = ()  # emails and "group:NAME"
    min_approvals: int = 1
    timeout: timedelta = timedelta(hours=24)
    require_mfa: bool = False


@dataclass(frozen=True)
class AutoApproveRule:
    """Approve at once, MFA still required: someone on call, or inside / outside windows."""

    on_call: str | None = None  # "pagerduty:SCHEDULE_ID" | "opsgenie:SCHEDULE_ID"
    windows: tuple[str, ...] = ()  # approve inside these ("Mon-Fri 09:00-18:00 Europe/Berlin")
    outside: tuple[str, ...] = ()  # approve outside these (a freeze: a human inside them)
    max_duration: timedelta | None = None  # longer requests go to a human
    end_with_shift: bool = False  # access ends when the on-call shift does


@dataclass(frozen=True)
class UsageCap:
    count: int
    per: timedelta


@dataclass(frozen=True)
class Escalation:
    after: timedelta  # from the request
    to: tuple[str, ...]  # emails and "group:NAME"


@dataclass(frozen=True)
class OnCallSourceConfig:
    kind: str  # pagerduty | opsgenie
    token_env: str
    api_url: str


@dataclass(frozen=True)
class BreakglassRule:
    allowed: bool = False
    max_duration: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Role:
    name: str
    provider: str
    description: str = ""
    grant: dict[str, Any] = field(default_factory=dict)
    max_duration: timedelta = timedelta(hours=8)
    default_duration: timedelta = timedelta(hours=1)
    require_mfa: bool = False
    require_justification: bool = True
    require_ticket: bool | str = False  # True, False, or a regex the ticket must match
    approval: ApprovalRule = ApprovalRule()
    breakglass: BreakglassRule = BreakglassRule()
    notify: tuple[str, ...] = ()
    expiry_reminder: timedelta | None = None
    auto_approve: AutoApproveRule | None = None
    max_activations: UsageCap | None = None
    escalate: tuple[Escalation, ...] = ()


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    user: str
    role: str
    type: AssignmentType
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class ReviewSchedule:
    name: str
    roles: tuple[str, ...]
    every: timedelta
    duration: timedelta
    reviewers: str = "approvers"  # "approvers", "admins", "self", or a list joined by ","
    if_no_response: str = "keep"  # keep | remove | recommendation
    recommend_after: timedelta | None = None


@dataclass(frozen=True)
class ChatRules:
    """Who a chat platform's adapter may let in (the policy's ``slack:`` section, say)."""

    allow_guests: bool = False  # guest / restricted accounts of the workspace


@dataclass(frozen=True)
class Policy:
    admins: tuple[str, ...] = ()
    auditors: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    assignments: tuple[Assignment, ...] = ()
    reviews: tuple[ReviewSchedule, ...] = ()
    chat: dict[str, ChatRules] = field(default_factory=dict)  # platform → its rules
    whois: WhoisVisibility = WhoisVisibility.PRIVILEGED
    oncall: dict[str, OnCallSourceConfig] = field(default_factory=dict)  # pagerduty, opsgenie

    def chat_rules(self, platform: str) -> ChatRules:
        return self.chat.get(platform, ChatRules())

    def is_admin(self, email: str) -> bool:
        return email.lower() in self.admins

    def is_auditor(self, email: str) -> bool:
        return email.lower() in self.auditors

    def expand(self, principals: tuple[str, ...]) -> tuple[str, ...]:
        """Emails named by a list of people and ``group:NAME`` entries, in order, unique."""
        seen: dict[str, None] = {}
        for principal in principals:
            if principal.startswith("group:"):
                for member in self.groups.get(principal.removeprefix("group:"), ()):
                    seen[member] = None
            else:
                seen[principal] = None
        return tuple(seen)

    def approvers_of(self, role: Role, escalation: int = 0) -> tuple[str, ...]:
        """The role's approvers, and those of its first ``escalation`` escalation steps."""
        named = role.approval.approvers
        for step in role.escalate[:escalation]:
            named += step.to
        return self.expand(named)

    def may_see_holders(self, email: str, role: Role) -> bool:
        """``whois ROLE``: everyone, or (the default) admins, auditors and its approvers."""
        if self.whois is WhoisVisibility.EVERYONE:
            return True
        who = email.lower()
        return self.is_admin(who) or self.is_auditor(who) or who in self.approvers_of(role)

    def people(self) -> tuple[str, ...]:
        """Everyone the policy names, admins first (the console's default actor is admins[0])."""
        seen: dict[str, None] = dict.fromkeys(self.admins)
        seen.update(dict.fromkeys(self.auditors))
        for members in self.groups.values():
            seen.update(dict.fromkeys(members))
        for role in self.roles.values():
            seen.update(dict.fromkeys(self.approvers_of(role)))
        for assignment in self.assignments:
            seen[assignment.user] = None
        return tuple(seen)
