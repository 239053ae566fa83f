"""The postgres provider's pure rules: role and login names, whose login is whose, the ``ref``.

Nothing here does I/O, so ``pimbot policy validate`` applies the very rules a grant applies.

Who owns a login is recorded on the login itself, as its PostgreSQL comment (``COMMENT ON
ROLE``, see ``owner_marker``): roles are cluster-wide and so are their comments, so every
pimbot replica, every restart and every provider pointing at the same cluster reads the same
record, and a login a DBA drops takes its record with it.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOGIN_FIELDS = frozenset({"email_local", "email"})
GRANT_KEYS = ("role",)
ROLE_PATTERN = "[A-Za-z_][A-Za-z0-9_.-]*, at most 63 characters"
_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,62}")
_LOGIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_@.+\-]{0,62}")
_NOT_LOCAL = re.compile(r"[^a-z0-9_]")
_MARKER = "pimbot-login "


@dataclass(frozen=True)
class GrantProblem:
    """One problem with a role's ``grant:`` parameters; ``key`` None is the whole mapping."""

    key: str | None
    message: str


def grant_problems(grant: Mapping[str, Any]) -> list[GrantProblem]:
    """``grant: {role: NAME}``: exactly one key, a PostgreSQL role name (validated, then quoted)."""
    problems = [
        GrantProblem(str(key), f"unknown key for a postgres grant (known: {', '.join(GRANT_KEYS)})")
        for key in grant
        if key not in GRANT_KEYS
    ]
    role = grant.get("role")
    if role is None:
        problems.append(GrantProblem("role", "is required: the PostgreSQL role to grant"))
    elif not isinstance(role, str) or not _ROLE_NAME.fullmatch(role):
        problems.append(
            GrantProblem("role", f"{role!r} is not a PostgreSQL role name ({ROLE_PATTERN})")
        )
    return problems


def login_template_errors(template: str) -> str | None:
    """Why a ``login`` template is unusable, or None when it is fine."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return "is not a valid template (unbalanced braces)"
    fields = [(name, spec, conv) for _, name, spec, conv in parts if name is not None]
    if not fields:
        return "must contain {email_local} or {email}, or everyone would share one login"
    for name, spec, conv in fields:
        if name not in LOGIN_FIELDS:
            return f"may use only {{email_local}} and {{email}}, not {{{name}}}"
        if spec or conv:
            return "placeholders take no format specs or conversions"
    return None


def login_for(template: str, email: str) -> str:
    """The database login for a person: ``{email_local}`` is the part before ``@``, lowercased,
    with everything but ``[a-z0-9_]`` replaced by ``_``; ``{email}`` is the lowercased email."""
    lowered = email.strip().lower()
    local = _NOT_LOCAL.sub("_", lowered.split("@", 1)[0])
    return template.format(email_local=local, email=lowered)


def login_name_problem(login: str) -> str | None:
    """Why ``login`` cannot be a pimbot-managed login, or None when it can."""
    if not _LOGIN_NAME.fullmatch(login):
        return (
            f"{login!r} is not a usable login name "
            "([A-Za-z0-9_] then [A-Za-z0-9_@.+-], at most 63 characters)"
        )
    if login.startswith("pg_"):
        return f"{login!r} is not a usable login name (pg_ names are reserved by PostgreSQL)"
    return None


def is_role_name(value: Any) -> bool:
    return isinstance(value, str) and bool(_ROLE_NAME.fullmatch(value))


@dataclass(frozen=True)
class LoginNames:
    """How a person's email becomes their login: ``overrides`` first, else the template."""

    template: str = "{email_local}"
    overrides: Mapping[str, str] = field(default_factory=dict)  # lower-cased email -> login

    def of(self, email: str) -> str:
        return self.overrides.get(email.strip().lower()) or login_for(self.template, email)

    def reserved_for(self, login: str) -> str | None:
        """The person the policy gives ``login`` to by an override, if any."""
        for email, name in self.overrides.items():
            if name == login:
                return email
        return None


def owner_marker(email: str) -> str:
    """The comment pimbot puts on a login it manages: ``pimbot-login {"email": "…"}``."""
    return _MARKER + json.dumps({"email": email.strip().lower()}, sort_keys=True)


def marker_owner(comment: str | None) -> str | None:
    """Whose login a comment says this is; None when it is not pimbot's marker."""
    if not comment or not comment.startswith(_MARKER):
        return None
    try:
        data = json.loads(comment.removeprefix(_MARKER))
    except ValueError:
        return None
    email = data.get("email") if isinstance(data, dict) else None
    return email if isinstance(email, str) and email else None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """An ``E'…'`` literal: safe whatever ``standard_conforming_strings`` is set to."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class GrantRef:
    """What a grant did, returned as its ``ref`` so the revoke undoes exactly that.

    Written as ``{"login": …, "role": …}``. Refs written before this format are the bare
    login name; they are still read (the role then comes from the grant parameters).
    """

    login: str
    role: str | None

    def encode(self) -> str:
        return json.dumps({"login": self.login, "role": self.role}, separators=(",", ":"))

    @classmethod
    def parse(cls, ref: str | None) -> GrantRef | None:
        """The ref's login and role; None when there is no usable ref. Raises ValueError for
        a JSON ref that does not name a valid login and role (nothing safe to revoke)."""
        if not ref:
            return None
        if not ref.startswith("{"):
            return cls(ref, None) if login_name_problem(ref) is None else None
        data = json.loads(ref)
        login = data.get("login") if isinstance(data, dict) else None
        role = data.get("role") if isinstance(data, dict) else None
        if not isinstance(login, str) or login_name_problem(login) or not is_role_name(role):
            raise ValueError("the ref does not name a valid login and role")
        return cls(login, role)
