"""Errors the core reports to people: one line, a machine-readable code and a hint."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    PARSE = "parse"
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_ROLE = "unknown_role"
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_REQUEST = "unknown_request"
    NOT_ELIGIBLE = "not_eligible"
    DURATION = "duration"
    JUSTIFICATION = "justification"
    TICKET = "ticket"
    MFA = "mfa"
    FORBIDDEN = "forbidden"
    SELF_APPROVAL = "self_approval"
    NOT_APPROVER = "not_approver"
    STATE = "state"
    CONFLICT = "conflict"
    NOT_AVAILABLE = "not_available"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class AuditNote:
    """An audit event to write for a refusal once its transaction has rolled back."""

    action: str
    subject: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class PimError(Exception):
    """A refusal or bad input, worded for the person who caused it."""

    def __init__(self, code: ErrorCode, message: str, hint: str | None = None, *,
                 audit: AuditNote | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.audit = audit

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (try: {self.hint})"
        return self.message
