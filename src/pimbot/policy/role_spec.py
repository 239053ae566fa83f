"""A role as the JSON stored in ``roles.spec``, back again, and what differs between two."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pimbot.domain.durations import format_duration
from pimbot.domain.model import Role


def role_spec(role: Role) -> dict[str, Any]:
    """A JSON-able mapping of the validated role (durations written like ``4h``)."""
    approval = role.approval
    return {
        "description": role.description,
        "provider": role.provider,
        "grant": role.grant,
        "max_duration": format_duration(role.max_duration),
        "default_duration": format_duration(role.default_duration),
        "require_mfa": role.require_mfa,
        "require_justification": role.require_justification,
        "require_ticket": role.require_ticket,
        "approval": {
            "required": approval.required,
            "approvers": list(approval.approvers),
            "min_approvals": approval.min_approvals,
            "timeout": format_duration(approval.timeout),
            "require_mfa": approval.require_mfa,
        },
        "breakglass": {
            "allowed": role.breakglass.allowed,
            "max_duration": format_duration(role.breakglass.max_duration),
        },
        "notify": list(role.notify),
        "expiry_reminder": _optional(role.expiry_reminder),
        **_rules(role),
    }


def _rules(role: Role) -> dict[str, Any]:
    """Approval rules, only when set (so roles without them keep their stored spec)."""
    rules: dict[str, Any] = {}
    auto = role.auto_approve
    if auto is not None:
        rules["auto_approve"] = {
            "on_call": auto.on_call, "windows": list(auto.windows),
            "outside": list(auto.outside), "max_duration": _optional(auto.max_duration),
            "end_with_shift": auto.end_with_shift}
    if role.max_activations is not None:
        rules["max_activations"] = {"count": role.max_activations.count,
                                    "per": format_duration(role.max_activations.per)}
    if role.escalate:
        rules["escalate"] = [{"after": format_duration(step.after), "to": list(step.to)}
                             for step in role.escalate]
    return rules


def canonical(spec: Any) -> str:
    """A stable serialisation: equal specs give equal strings on every backend."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``max_duration: 4h → 2h`` for every leaf that differs, in a stable order."""
    before, after = _flatten(old), _flatten(new)
    return [
        f"{key}: {_show(before.get(key))} → {_show(after.get(key))}"
        for key in sorted(before.keys() | after.keys())
        if canonical(before.get(key)) != canonical(after.get(key))
    ]


def _flatten(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, dict) and key != "grant":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value or "''"
    return json.dumps(value, sort_keys=True)


def _optional(value: timedelta | None) -> str | None:
    return format_duration(value) if value is not None else None
