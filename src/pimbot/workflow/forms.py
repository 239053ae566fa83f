"""Forms the core asks adapters to open, and the text the console shows instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pimbot.commands import writer
from pimbot.domain.durations import format_duration, parse_duration
from pimbot.domain.examples import activation_example
from pimbot.domain.model import Policy, Role
from pimbot.domain.typed_text import TEXT_LIMIT
from pimbot.ui.cards import ActionId, Choice, Form, Input, InputKind, Reply

if TYPE_CHECKING:
    from pimbot.workflow.usecases.activation import ActivationInput

_DURATIONS = ("15m", "30m", "1h", "2h", "4h", "8h", "12h", "24h")
PARTS = {"reason": "a reason", "ticket": "a ticket", "code": "your authenticator code"}


def activation_form(policy: Policy, eligible: list[str], given: ActivationInput) -> Form:
    role = policy.roles.get(given.role or "")
    inputs: list[Input] = [
        Input("role", "Role", InputKind.SELECT, initial=given.role or "",
              choices=tuple(Choice(f"{name} — {policy.roles[name].description}".rstrip(" —"),
                                   name) for name in eligible if name in policy.roles)),
    ]
    limit = role.max_duration if role else max(
        (policy.roles[n].max_duration for n in eligible if n in policy.roles), default=None)
    choices = [d for d in _DURATIONS if limit is None or _seconds(d) <= limit.total_seconds()]
    # With no role chosen yet there is no default to show (each role has its own): none is
    # preselected, so nothing claims the person gave a duration they did not type.
    chosen = given.duration or (role.default_duration if role else None)
    default = format_duration(chosen) if chosen else ""
    if default and default not in choices:
        choices.append(default)
    inputs.append(Input("duration", "Duration", InputKind.SELECT, initial=default,
                        choices=tuple(Choice(c, c) for c in choices)))
    inputs.append(Input("reason", "Justification", InputKind.MULTILINE,
                        required=role.require_justification if role else True,
                        initial=given.reason or "", placeholder="What you will do and why",
                        max_length=TEXT_LIMIT))
    if role is None or role.require_ticket is not False:
        inputs.append(Input("ticket", "Ticket", required=role is not None,
                            initial=given.ticket or "", placeholder="INC-42", max_length=200))
    if role is None or role.require_mfa:
        inputs.append(Input("code", "Authenticator code", InputKind.CODE,
                            required=role is not None, placeholder="123456", max_length=6))
    return Form(title="Activate a role", submit=ActionId.SUBMIT_ACTIVATION,
                submit_label="Activate", inputs=tuple(inputs), value=given.role or "")


def activation_form_reply(policy: Policy, eligible: list[str], given: ActivationInput,
                          missing: list[str]) -> Reply:
    roles = ", ".join(eligible) if eligible else "none (ask an admin to assign you a role)"
    if given.role is None:
        text = f"Which role? Your eligible roles: {roles}."
        example = eligible[0] if eligible else None
    else:
        text = f"{given.role} needs {', '.join(PARTS[m] for m in missing)}."
        example = given.role
    role = policy.roles.get(example or "")
    example_line = _typed_example(role, given) if role else "roles"
    return Reply(text=f"{text} Nothing was changed.", hint=example_line,
                 form=activation_form(policy, eligible, given), ok=False)


def _typed_example(role: Role, given: ActivationInput) -> str:
    """The activation line to type for ``role``, with what the person already gave (their
    duration, start, ticket and reason, written to read back the same) and the samples for
    what is missing. A code is never written back (``123456`` stands in for it)."""
    if given.role != role.name:  # no role was named: the example of their first one
        return activation_example(role)
    return activation_example(
        role, duration=format_duration(given.duration)
        if given.duration and given.duration <= role.max_duration else None,
        at=writer.when(given.at) if given.at else None,
        ticket=writer.word(given.ticket) if given.ticket else None,
        reason=writer.free_text(given.reason) if given.reason else None)


def deny_form(request_id: str) -> Form:
    return Form(title="Deny request", submit=ActionId.SUBMIT_DENY, submit_label="Deny",
                inputs=(Input("reason", "Reason for denying", InputKind.MULTILINE,
                              max_length=TEXT_LIMIT),),
                value=request_id)


def approve_code_form(request_id: str) -> Form:
    return Form(title="Approve with MFA", submit=ActionId.SUBMIT_APPROVE, submit_label="Approve",
                inputs=(Input("code", "Authenticator code", InputKind.CODE, max_length=6),
                        Input("comment", "Comment", required=False, max_length=TEXT_LIMIT)),
                value=request_id, text="This approval needs your authenticator code.")


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def extend_code_form(request_id: str, duration: str) -> Form:
    return Form(title="Extend with MFA", submit=ActionId.SUBMIT_EXTEND, submit_label="Extend",
                inputs=(Input("duration", "Extend by", InputKind.SELECT, initial=duration,
                              choices=tuple(Choice(d, d) for d in _DURATIONS)),
                        Input("code", "Authenticator code", InputKind.CODE, max_length=6)),
                value=request_id, text="This role needs your authenticator code to extend.")
