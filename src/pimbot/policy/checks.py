"""Checks across the policy: names that must exist, limits between fields, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import PydanticCustomError

from pimbot.domain.durations import format_duration
from pimbot.policy.fields import principal, show
from pimbot.policy.issues import PolicyIssue, join_path
from pimbot.policy.schema import PostgresProvider, ReviewSpec, RoleSpec
from pimbot.policy.sections import Draft

DEFAULT_DURATION = timedelta(hours=1)
REVIEWER_KINDS = ("approvers", "admins", "self")


def check_draft(draft: Draft) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    for name, provider in draft.providers.items():
        if isinstance(provider, PostgresProvider) and (provider.dsn is None) == (
            provider.dsn_env is None
        ):
            issues.append(PolicyIssue(f"providers.{name}", "give dsn or dsn_env (one of them)"))
    for name, role in draft.roles.items():
        issues.extend(_check_role(draft, name, role))
    for name, body in draft.broken_roles.items():
        named = body.get("provider")
        if isinstance(named, str) and named not in draft.declared["providers"]:
            known = draft.declared["providers"]
            issues.append(PolicyIssue(f"roles.{name}.provider", _unknown("provider", named, known)))
    issues.extend(_check_assignments(draft))
    issues.extend(_check_reviews(draft))
    return issues


def default_duration_of(role: RoleSpec) -> timedelta:
    """The given default, else 1h (or max_duration when that is shorter)."""
    if role.default_duration is not None:
        return role.default_duration
    return min(DEFAULT_DURATION, role.max_duration)


def _unknown(what: str, name: str, known: list[str]) -> str:
    return f"unknown {what} {show(name)} (known: {', '.join(known) or 'none'})"


def _check_role(draft: Draft, name: str, role: RoleSpec) -> list[PolicyIssue]:
    at = f"roles.{name}"
    issues: list[PolicyIssue] = []
    if role.provider not in draft.declared["providers"]:
        known = draft.declared["providers"]
        issues.append(PolicyIssue(f"{at}.provider", _unknown("provider", role.provider, known)))
    default = default_duration_of(role)
    if default > role.max_duration:
        issues.append(
            PolicyIssue(
                f"{at}.default_duration",
                f"{format_duration(default)} is longer than max_duration "
                f"{format_duration(role.max_duration)}",
            )
        )
    issues.extend(_check_approvers(draft, f"{at}.approval", role))
    issues.extend(_check_rules(draft, at, role))
    return issues


def _check_rules(draft: Draft, at: str, role: RoleSpec) -> list[PolicyIssue]:
    """Approval rules that name things elsewhere in the policy."""
    issues: list[PolicyIssue] = []
    auto = role.auto_approve
    if auto is not None:
        if not role.approval.required:
            issues.append(PolicyIssue(f"{at}.auto_approve", "auto_approve needs approval."
                                      "required: true (there is nothing to approve)"))
        kind = (auto.on_call or "").partition(":")[0]
        if kind and kind not in draft.oncall and "oncall" not in draft.broken:
            issues.append(PolicyIssue(f"{at}.auto_approve.on_call",
                                      f"{kind} is not configured: add oncall: {{{kind}: "
                                      "{token_env: …}}"))
    if role.max_activations is not None and not role.approval.approvers:
        issues.append(PolicyIssue(f"{at}.max_activations", "after the cap approval is needed: "
                                  "name approval.approvers"))
    for index, step in enumerate(role.escalate):
        issues.extend(_check_groups(draft, f"{at}.escalate[{index}].to", step.to))
    if role.escalate and not role.approval.required:
        issues.append(PolicyIssue(f"{at}.escalate", "escalate needs approval.required: true"))
    return issues


def _check_approvers(draft: Draft, at: str, role: RoleSpec) -> list[PolicyIssue]:
    approval = role.approval
    if approval.required and not approval.approvers:
        return [PolicyIssue(f"{at}.approvers", "approval is required but no approvers are named")]
    issues = _check_groups(draft, f"{at}.approvers", approval.approvers)
    if issues or "groups" in draft.broken or not approval.approvers:
        return issues
    count = len(_expand(draft, approval.approvers))
    if approval.min_approvals > count:
        issues.append(
            PolicyIssue(
                f"{at}.min_approvals",
                f"{approval.min_approvals} approvals needed but only {count} "
                f"approver{'s' if count != 1 else ''} named (after expanding groups)",
            )
        )
    return issues


def _check_groups(draft: Draft, at: str, principals: list[str]) -> list[PolicyIssue]:
    known = draft.declared["groups"]
    return [
        PolicyIssue(f"{at}[{index}]", _unknown("group", group, known))
        for index, entry in enumerate(principals)
        if entry.startswith("group:") and (group := entry.removeprefix("group:")) not in known
    ]


def _expand(draft: Draft, principals: list[str]) -> set[str]:
    emails: set[str] = set()
    for entry in principals:
        if entry.startswith("group:"):
            emails.update(draft.groups.get(entry.removeprefix("group:"), []))
        else:
            emails.add(entry)
    return emails


def _check_assignments(draft: Draft) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    seen: dict[tuple[str, str, str], int] = {}
    for index, item in draft.assignments:
        at = f"assignments[{index}]"
        if item.role not in draft.declared["roles"]:
            known = draft.declared["roles"]
            issues.append(PolicyIssue(f"{at}.role", _unknown("role", item.role, known)))
        if item.starts_at and item.ends_at and item.ends_at <= item.starts_at:
            issues.append(
                PolicyIssue(
                    f"{at}.until",
                    f"{_when(item.ends_at)} is not after from {_when(item.starts_at)}",
                )
            )
        identity = (item.user, item.role, item.type)
        if identity in seen:
            issues.append(
                PolicyIssue(at, f"{' '.join(identity)} repeats assignments[{seen[identity]}]")
            )
        seen.setdefault(identity, index)
    return issues


def _when(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_reviews(draft: Draft) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    names: dict[str, int] = {}
    for index, review in draft.reviews:
        at = f"reviews[{index}]"
        if review.name in names:
            message = f"{show(review.name)} is used by reviews[{names[review.name]}]"
            issues.append(PolicyIssue(f"{at}.name", message))
        names.setdefault(review.name, index)
        issues.extend(_check_review(draft, at, review))
    return issues


def _check_review(draft: Draft, at: str, review: ReviewSpec) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    if not review.roles:
        issues.append(PolicyIssue(f"{at}.roles", "names no role"))
    known = draft.declared["roles"]
    for index, role in enumerate(review.roles):
        if role not in known:
            issues.append(PolicyIssue(f"{at}.roles[{index}]", _unknown("role", role, known)))
    if review.duration > review.every:
        issues.append(
            PolicyIssue(
                f"{at}.duration",
                f"{format_duration(review.duration)} is longer than every "
                f"({format_duration(review.every)})",
            )
        )
    reviewers, problems = parse_reviewers(review.reviewers, f"{at}.reviewers")
    issues.extend(problems)
    if not problems and isinstance(reviewers, list):
        issues.extend(_check_groups(draft, f"{at}.reviewers", reviewers))
    return issues


def parse_reviewers(value: Any, at: str) -> tuple[str | list[str], list[PolicyIssue]]:
    """``approvers``, ``admins``, or a list of emails and ``group:NAME`` entries."""
    if isinstance(value, str) and value.strip().lower() in REVIEWER_KINDS:
        return value.strip().lower(), []
    if not isinstance(value, list) or not value:
        message = (f"{show(value)} is not approvers, admins, self or a list of emails and "
                   "group:NAME")
        return "approvers", [PolicyIssue(at, message)]
    people: list[str] = []
    issues: list[PolicyIssue] = []
    for index, entry in enumerate(value):
        try:
            people.append(principal(entry))
        except PydanticCustomError as exc:
            issues.append(PolicyIssue(join_path((at, index)), exc.message()))
    return people, issues
