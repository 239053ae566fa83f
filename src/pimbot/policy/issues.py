"""Policy problems with their YAML path, and pydantic errors worded for people."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pimbot.policy.fields import show

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class PolicyIssue:
    path: str  # e.g. roles.prod-db-admin.approval.approvers[1]; "" for the whole file
    message: str


class PolicyError(Exception):
    """Every problem found in a policy file (not just the first)."""

    def __init__(self, source: str, issues: list[PolicyIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(
            f"{self.source}: {issue.path}: {issue.message}"
            if issue.path
            else f"{self.source}: {issue.message}"
            for issue in self.issues
        )


def join_path(loc: Loc) -> str:
    """``("roles", "x", "approvers", 1)`` → ``roles.x.approvers[1]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def unknown_key(key: Any, known: typing.Iterable[str]) -> str:
    """Message for a key the schema does not have, with a did-you-mean."""
    names = list(known)
    close = difflib.get_close_matches(str(key), names, n=1) if isinstance(key, str) else []
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (known: {', '.join(names)})" if names else "unknown key"


def issues_from(
    error: ValidationError, prefix: Loc, model: type[BaseModel] | None = None
) -> list[PolicyIssue]:
    """Translate a pydantic error of ``model`` validated at ``prefix`` into policy issues."""
    return [
        PolicyIssue(join_path(prefix + tuple(detail["loc"])), _message(detail, model))
        for detail in error.errors(include_url=False)
    ]


_PLAIN = {
    "missing": "is required",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
}


def _message(detail: ErrorDetails, model: type[BaseModel] | None) -> str:
    kind = detail["type"]
    if kind == "policy":
        return detail["msg"]
    if kind == "extra_forbidden":
        loc = tuple(detail["loc"])
        return unknown_key(loc[-1], known_keys(model, loc[:-1]) if model else [])
    if kind in _PLAIN:
        return _PLAIN[kind]
    value = detail.get("input")
    if kind.startswith("bool"):
        return f"{show(value)} is not true or false"
    if kind.startswith("int"):
        return f"{show(value)} is not a whole number"
    text = detail["msg"]
    return text[:1].lower() + text[1:]


def known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed by the model found at ``loc`` inside ``model``."""
    current = model
    for part in loc:
        if not isinstance(part, str):
            continue
        field = _field_by_key(current, part)
        nested = _model_in(field.annotation) if field is not None else None
        if nested is None:
            return []
        current = nested
    return [field.alias or name for name, field in current.model_fields.items()]


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
