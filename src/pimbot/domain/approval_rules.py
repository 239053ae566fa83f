"""Approval rules, decided purely: on-call auto-approval, time windows, usage caps.

``plan_approval`` answers "does this request need a human, and why?" with the rule that
decided and its evidence (what the audit log and every card show). A rule that cannot be
checked (the on-call source is down) fails closed: a human decides, and the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pimbot.domain.durations import format_duration
from pimbot.domain.model import AutoApproveRule, Role
from pimbot.domain.windows import parse_window


@dataclass(frozen=True)
class OnCallAnswer:
    """What an on-call source said about one person and schedule, now."""

    schedule: str  # "pagerduty:PSCHED1"
    on_call: bool = False
    shift_start: datetime | None = None
    shift_end: datetime | None = None
    error: str = ""  # the source could not be asked (down, 401, rate-limited)


@dataclass(frozen=True)
class ApprovalPlan:
    needs_approval: bool
    rule: str = ""  # the rule that decided ("" when only `approval.required` did)
    reason: str = ""  # one line for the card and the audit log
    evidence: dict[str, str] = field(default_factory=dict)
    ends_by: datetime | None = None  # the access ends here at the latest (end_with_shift)

    @property
    def automatic(self) -> bool:
        return not self.needs_approval and bool(self.rule)


def plan_approval(role: Role, *, now: datetime, duration: timedelta, recent: int,
                  on_call: OnCallAnswer | None = None) -> ApprovalPlan:
    """``recent``: the person's activations of the role within the cap's period."""
    cap = role.max_activations
    if not role.approval.required:
        if cap is not None and recent >= cap.count:
            return ApprovalPlan(True, "max_activations",
                                f"{recent} activations in the last {format_duration(cap.per)} "
                                f"(at most {cap.count} without approval): approval needed",
                                {"count": str(recent), "per": format_duration(cap.per)})
        return ApprovalPlan(False)
    rule = role.auto_approve
    if rule is None:
        return ApprovalPlan(True)
    if rule.max_duration is not None and duration > rule.max_duration:
        return ApprovalPlan(True, "auto_approve", f"{format_duration(duration)} is longer than "
                            f"the {format_duration(rule.max_duration)} the rule approves")
    if rule.on_call is not None:
        return _on_call(rule, on_call, now)
    return _windows(rule, now)


def _on_call(rule: AutoApproveRule, answer: OnCallAnswer | None,
             now: datetime) -> ApprovalPlan:
    schedule = rule.on_call or ""
    if answer is None or answer.error:
        why = answer.error if answer is not None else "not asked"
        return ApprovalPlan(True, "auto_approve.on_call",
                            f"on-call source unavailable ({why}): a human decides",
                            {"schedule": schedule})
    if not answer.on_call:
        return ApprovalPlan(True, "auto_approve.on_call", f"not on call on {schedule}: a human "
                            "decides", {"schedule": schedule})
    evidence = {"schedule": schedule}
    if answer.shift_start is not None:
        evidence["shift_start"] = answer.shift_start.isoformat()
    if answer.shift_end is not None:
        evidence["shift_end"] = answer.shift_end.isoformat()
    ends_by = answer.shift_end if rule.end_with_shift else None
    until = f" until the shift ends {answer.shift_end:%Y-%m-%d %H:%M} UTC" \
        if ends_by is not None else ""
    return ApprovalPlan(False, "auto_approve.on_call",
                        f"approved automatically: on call on {schedule}{until}", evidence,
                        ends_by)


def _windows(rule: AutoApproveRule, now: datetime) -> ApprovalPlan:
    if rule.windows:
        inside = next((w for w in rule.windows if parse_window(w).contains(now)), None)
        if inside is not None:
            return ApprovalPlan(False, "auto_approve.windows",
                                f"approved automatically: inside {inside}", {"window": inside})
        return ApprovalPlan(True, "auto_approve.windows",
                            f"outside {', '.join(rule.windows)}: a human decides")
    if rule.outside:
        inside = next((w for w in rule.outside if parse_window(w).contains(now)), None)
        if inside is None:
            return ApprovalPlan(False, "auto_approve.outside",
                                f"approved automatically: outside {', '.join(rule.outside)}",
                                {"outside": ", ".join(rule.outside)})
        return ApprovalPlan(True, "auto_approve.outside", f"inside {inside}: a human decides",
                            {"window": inside})
    return ApprovalPlan(True)


def describe_rules(role: Role) -> list[str]:
    """The role's approval rules in words (``policy plan`` and the cards)."""
    words = []
    rule = role.auto_approve
    if rule is not None:
        limit = f" (up to {format_duration(rule.max_duration)})" if rule.max_duration else ""
        if rule.on_call:
            shift = ", ends with the shift" if rule.end_with_shift else ""
            words.append(f"auto-approve people on call on {rule.on_call}{limit}{shift}")
        if rule.windows:
            words.append(f"auto-approve inside {', '.join(rule.windows)}{limit}")
        if rule.outside:
            words.append(f"auto-approve outside {', '.join(rule.outside)}{limit}")
    if role.max_activations is not None:
        cap = role.max_activations
        words.append(f"approval after {cap.count} activations per {format_duration(cap.per)}")
    for step in role.escalate:
        words.append(f"escalate to {', '.join(step.to)} after {format_duration(step.after)}")
    return words
