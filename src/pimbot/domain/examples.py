"""Commands offered as hints ("try: …"), written so that typing one as it stands works.

A hint names a real role and gives every clause that role requires: a duration within its
maximum, a ticket (one that matches its pattern, where a sample does), an authenticator code
where it needs MFA, and a reason. ``123456`` and ``…`` are the placeholders people replace.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pimbot.domain.durations import format_duration
from pimbot.domain.model import Role

SAMPLE_DURATION = timedelta(hours=1)
SAMPLE_TICKETS = ("INC-42", "CHG-42", "42")
SAMPLE_CODE = "123456"
SAMPLE_REASON = "…"


def sample_duration(role: Role, limit: timedelta | None = None) -> str:
    """An hour, or the role's maximum (or ``limit``) when that is shorter."""
    bound = min(role.max_duration, limit) if limit is not None else role.max_duration
    return format_duration(min(SAMPLE_DURATION, bound))


def sample_ticket(role: Role) -> str:
    rule = role.require_ticket
    if isinstance(rule, str):
        for ticket in SAMPLE_TICKETS:
            if re.fullmatch(rule, ticket):
                return ticket
        return "…"
    return SAMPLE_TICKETS[0]


def activation_example(role: Role, *, verb: str = "activate",
                       duration: str | None = None, at: str | None = None,
                       ticket: str | None = None, reason: str | None = None) -> str:
    """``activate ROLE for DUR [ticket T] [code 123456] reason …`` with what ``role`` needs.

    ``verb="breakglass"`` gives the break-glass form (its own cap; MFA is always asked).
    ``at``, ``ticket`` and ``reason`` are what the person typed, written as the grammar reads
    them back (``pimbot.commands.writer``); the samples stand in for those not given.
    """
    breakglass = verb == "breakglass"
    limit = role.breakglass.max_duration if breakglass else None
    clauses = [verb, role.name]
    if at:
        clauses += ["at", at]
    clauses += ["for", duration or sample_duration(role, limit)]
    if (role.require_ticket is not False or ticket) and not breakglass:
        clauses += ["ticket", ticket or sample_ticket(role)]
    if role.require_mfa or breakglass:
        clauses += ["code", SAMPLE_CODE]
    clauses += ["reason", reason or SAMPLE_REASON]
    return " ".join(clauses)
