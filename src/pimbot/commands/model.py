"""What a chat message asks for: one frozen dataclass per command of the grammar.

Role names, WHEN / DATE expressions and users stay as typed (validated for syntax only):
the workflow resolves them against the policy, the clock and the identity directory.
Each class carries ``name``, the verb as typed, for help texts and the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import ClassVar

from pimbot.domain.model import AssignmentType


class UserRefKind(StrEnum):
    MENTION = "mention"  # a platform user id, e.g. Slack ``U123`` from ``<@U123|bob>``
    EMAIL = "email"
    NAME = "name"  # a display name: never picks a person (see pimbot.workflow.people)


@dataclass(frozen=True)
class UserRef:
    kind: UserRefKind
    value: str

    def __str__(self) -> str:
        if self.kind is UserRefKind.MENTION:
            return f"<@{self.value}>"
        return self.value


@dataclass(frozen=True)
class Help:
    name: ClassVar[str] = "help"
    topic: str | None = None


@dataclass(frozen=True)
class Roles:
    name: ClassVar[str] = "roles"


@dataclass(frozen=True)
class Activate:
    name: ClassVar[str] = "activate"
    role: str | None = None
    duration: timedelta | None = None
    reason: str | None = None
    ticket: str | None = None
    code: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class Deactivate:
    name: ClassVar[str] = "deactivate"
    role: str


@dataclass(frozen=True)
class Extend:
    name: ClassVar[str] = "extend"
    role: str
    duration: timedelta | None = None
    code: str | None = None  # for roles that require MFA


@dataclass(frozen=True)
class Status:
    name: ClassVar[str] = "status"


@dataclass(frozen=True)
class Cancel:
    name: ClassVar[str] = "cancel"
    request_id: str


@dataclass(frozen=True)
class Pending:
    name: ClassVar[str] = "pending"


@dataclass(frozen=True)
class Approve:
    name: ClassVar[str] = "approve"
    request_id: str
    comment: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Deny:
    name: ClassVar[str] = "deny"
    request_id: str
    reason: str


@dataclass(frozen=True)
class Whois:
    name: ClassVar[str] = "whois"
    role: str


@dataclass(frozen=True)
class MfaEnroll:
    name: ClassVar[str] = "mfa enroll"
    code: str | None = None  # a code of the current authenticator, when replacing it


@dataclass(frozen=True)
class MfaConfirm:
    name: ClassVar[str] = "mfa confirm"
    code: str


@dataclass(frozen=True)
class MfaStatus:
    name: ClassVar[str] = "mfa status"


@dataclass(frozen=True)
class MfaReset:
    name: ClassVar[str] = "mfa reset"
    user: UserRef
    code: str | None = None  # the admin's own one-time code


@dataclass(frozen=True)
class Reviews:
    name: ClassVar[str] = "reviews"


@dataclass(frozen=True)
class ReviewStart:
    name: ClassVar[str] = "review start"
    roles: tuple[str, ...]
    duration: timedelta | None = None


@dataclass(frozen=True)
class ReviewKeep:
    name: ClassVar[str] = "review keep"
    item_id: str
    reason: str | None = None


@dataclass(frozen=True)
class ReviewRemove:
    name: ClassVar[str] = "review remove"
    item_id: str
    reason: str


@dataclass(frozen=True)
class ReviewAccept:
    """Accept pimbot's recommendation on every review item waiting for me."""

    name: ClassVar[str] = "review accept"


@dataclass(frozen=True)
class Assign:
    name: ClassVar[str] = "assign"
    user: UserRef
    role: str
    type: AssignmentType
    duration: timedelta | None = None
    until: str | None = None


@dataclass(frozen=True)
class Unassign:
    name: ClassVar[str] = "unassign"
    user: UserRef
    role: str


@dataclass(frozen=True)
class Audit:
    name: ClassVar[str] = "audit"
    subject: str | None = None  # a user (mention, email, name) or a role, as typed
    since: str | None = None


@dataclass(frozen=True)
class Breakglass:
    name: ClassVar[str] = "breakglass"
    role: str
    reason: str
    duration: timedelta | None = None
    code: str | None = None


Command = (
    Help
    | Roles
    | Activate
    | Deactivate
    | Extend
    | Status
    | Cancel
    | Pending
    | Approve
    | Deny
    | Whois
    | MfaEnroll
    | MfaConfirm
    | MfaStatus
    | MfaReset
    | Reviews
    | ReviewStart
    | ReviewKeep
    | ReviewRemove
    | ReviewAccept
    | Assign
    | Unassign
    | Audit
    | Breakglass
)
