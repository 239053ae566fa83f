"""Read a parsed YAML document section by section into a ``Draft``, collecting every issue.

Items are validated one at a time, so one broken role leaves the others (and the checks that
refer to them) intact. A name that is declared but broken still counts as declared, so its
users are not reported as referring to an unknown name as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from pimbot.policy.fields import Email, check_name, show
from pimbot.policy.issues import Loc, PolicyIssue, issues_from, join_path, unknown_key
from pimbot.policy.schema import (
    CHAT_SECTIONS,
    ONCALL_KINDS,
    PROVIDER_SPECS,
    PROVIDER_TYPES,
    SECTIONS,
    WHOIS_CHOICES,
    AssignmentSpec,
    ChatSpec,
    OnCallSourceSpec,
    ProviderSpec,
    ReviewSpec,
    RoleSpec,
)

M = TypeVar("M", bound=BaseModel)
_EMAILS: TypeAdapter[list[str]] = TypeAdapter(list[Email])


@dataclass
class Draft:
    """What validated, plus every name that was declared (valid or not)."""

    admins: list[str] = field(default_factory=list)
    auditors: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    providers: dict[str, ProviderSpec] = field(default_factory=dict)
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    assignments: list[tuple[int, AssignmentSpec]] = field(default_factory=list)
    reviews: list[tuple[int, ReviewSpec]] = field(default_factory=list)
    chat: dict[str, ChatSpec] = field(default_factory=dict)  # platform section → its rules
    oncall: dict[str, OnCallSourceSpec] = field(default_factory=dict)
    whois: str = "privileged"
    declared: dict[str, list[str]] = field(default_factory=dict)  # section -> names, in order
    broken: set[str] = field(default_factory=set)  # sections with at least one issue
    broken_roles: dict[str, dict[Any, Any]] = field(default_factory=dict)  # name -> raw body


def read_sections(document: Any) -> tuple[Draft, list[PolicyIssue]]:
    draft = Draft(declared={"groups": [], "providers": [], "roles": []})
    issues: list[PolicyIssue] = []
    if document is None:
        return draft, issues
    if not isinstance(document, dict):
        issues.append(PolicyIssue("", f"the policy must be a mapping of {', '.join(SECTIONS)}"))
        return draft, issues
    for key, value in document.items():
        if key not in SECTIONS:
            issues.append(PolicyIssue(str(key), unknown_key(key, SECTIONS)))
            continue
        found = _READERS[key](draft, value)
        if found:
            draft.broken.add(key)
        issues.extend(found)
    return draft, issues


def _validate(model: type[M], value: Any, loc: Loc, issues: list[PolicyIssue]) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        issues.extend(issues_from(exc, loc, model))
        return None


def _emails(value: Any, loc: Loc, issues: list[PolicyIssue]) -> list[str] | None:
    if value is None:
        return []
    try:
        return _EMAILS.validate_python(value)
    except ValidationError as exc:
        issues.extend(issues_from(exc, loc))
        return None


def _mapping(value: Any, section: str, issues: list[PolicyIssue]) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.append(PolicyIssue(section, f"must be a mapping of names, not {show(value)}"))
        return {}
    return value


def _named(
    draft: Draft, section: str, value: Any, issues: list[PolicyIssue]
) -> Iterator[tuple[str, Any]]:
    """The (name, body) pairs of a mapping section whose names are acceptable, in order."""
    for name, body in _mapping(value, section, issues).items():
        draft.declared[section].append(str(name))
        problem = check_name(name, section.removesuffix("s"))
        if problem:
            issues.append(PolicyIssue(join_path((section, str(name))), problem))
            continue
        yield name, body


def _read_people(section: str) -> Callable[[Draft, Any], list[PolicyIssue]]:
    def read(draft: Draft, value: Any) -> list[PolicyIssue]:
        issues: list[PolicyIssue] = []
        emails = _emails(value, (section,), issues)
        setattr(draft, section, emails or [])
        return issues

    return read


def _read_whois(draft: Draft, value: Any) -> list[PolicyIssue]:
    """``whois: privileged`` (admins, auditors, the role's approvers) or ``everyone``."""
    if value is None:
        return []
    if value not in WHOIS_CHOICES:
        return [PolicyIssue("whois", f"{show(value)} is not one of: {', '.join(WHOIS_CHOICES)}")]
    draft.whois = str(value)
    return []


def _read_groups(draft: Draft, value: Any) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    for name, members in _named(draft, "groups", value, issues):
        emails = _emails(members, ("groups", name), issues)
        if emails is not None:
            draft.groups[name] = emails
    return issues


def _read_providers(draft: Draft, value: Any) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    for name, body in _named(draft, "providers", value, issues):
        kind = body.get("type") if isinstance(body, dict) else None
        model = PROVIDER_SPECS.get(kind) if isinstance(kind, str) else None
        if isinstance(body, dict) and model is None:
            message = "is required" if kind is None else f"{show(kind)} is not a provider type"
            known = ", ".join(PROVIDER_TYPES)
            issues.append(PolicyIssue(f"providers.{name}.type", f"{message} (one of: {known})"))
            continue
        spec = _validate(model or ProviderSpec, body, ("providers", name), issues)
        if spec is not None:
            draft.providers[name] = spec
    return issues


def _read_roles(draft: Draft, value: Any) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    for name, body in _named(draft, "roles", value, issues):
        spec = _validate(RoleSpec, body, ("roles", name), issues)
        if spec is not None:
            draft.roles[name] = spec
        elif isinstance(body, dict):
            draft.broken_roles[name] = body
    return issues


def _read_oncall(draft: Draft, value: Any) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    if value is None:
        return issues
    if not isinstance(value, dict):
        return [PolicyIssue("oncall", f"must be a mapping of pagerduty / opsgenie, not "
                                      f"{show(value)}")]
    for name, body in value.items():
        if name not in ONCALL_KINDS:
            issues.append(PolicyIssue(f"oncall.{name}", f"{show(name)} is not an on-call "
                                      f"source (one of: {', '.join(ONCALL_KINDS)})"))
            continue
        spec = _validate(OnCallSourceSpec, body, ("oncall", name), issues)
        if spec is not None:
            draft.oncall[name] = spec
    return issues


def _read_chat(section: str) -> Callable[[Draft, Any], list[PolicyIssue]]:
    def read(draft: Draft, value: Any) -> list[PolicyIssue]:
        issues: list[PolicyIssue] = []
        spec = _validate(ChatSpec, {} if value is None else value, (section,), issues)
        if spec is not None:
            draft.chat[section] = spec
        return issues

    return read


def _read_list(section: str, model: type[M]) -> Callable[[Draft, Any], list[PolicyIssue]]:
    def read(draft: Draft, value: Any) -> list[PolicyIssue]:
        issues: list[PolicyIssue] = []
        if value is None:
            return issues
        if not isinstance(value, list):
            return [PolicyIssue(section, f"must be a list, not {show(value)}")]
        items: list[tuple[int, M]] = getattr(draft, section)
        for index, item in enumerate(value):
            spec = _validate(model, item, (section, index), issues)
            if spec is not None:
                items.append((index, spec))
        return issues

    return read


_READERS: dict[str, Callable[[Draft, Any], list[PolicyIssue]]] = {
    "admins": _read_people("admins"),
    "auditors": _read_people("auditors"),
    "whois": _read_whois,
    "groups": _read_groups,
    "providers": _read_providers,
    "roles": _read_roles,
    "assignments": _read_list("assignments", AssignmentSpec),
    "reviews": _read_list("reviews", ReviewSpec),
    "oncall": _read_oncall,
    **{section: _read_chat(section) for section in CHAT_SECTIONS},
}
