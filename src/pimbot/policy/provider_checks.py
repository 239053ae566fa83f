"""Checks the providers make of the policy: grant parameters, and whose database login is whose.

Each provider judges its own grant parameters (``pimbot.providers.grant_parameter_problems``),
with the very rules it applies when it grants, so a grant the provider would refuse is an
error at ``roles.NAME.grant.KEY`` before anyone asks for it. For postgres providers, every
person the policy names is mapped to a login as a grant would map them: two people sharing
one login, a login that is not usable, or a login that is a granted role's name is an error
at the path where that person is named.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pimbot.policy.issues import PolicyIssue
from pimbot.policy.schema import PostgresProvider
from pimbot.policy.sections import Draft
from pimbot.providers import grant_parameter_problems
from pimbot.providers.postgres_names import (
    LoginNames,
    login_name_problem,
    login_template_errors,
)


def check_providers(draft: Draft) -> list[PolicyIssue]:
    issues = list(_grant_issues(draft))
    for name, spec in draft.providers.items():
        if isinstance(spec, PostgresProvider):
            issues.extend(_login_issues(draft, name, spec))
    return issues


def _grant_issues(draft: Draft) -> Iterator[PolicyIssue]:
    bodies: dict[str, tuple[Any, Any]] = {
        name: (role.provider, role.grant) for name, role in draft.roles.items()
    }
    for name, body in draft.broken_roles.items():  # their other errors are reported already
        bodies[name] = (body.get("provider"), body.get("grant", {}))
    for name, (provider, grant) in bodies.items():
        spec = draft.providers.get(provider) if isinstance(provider, str) else None
        if spec is None or not isinstance(grant, Mapping):
            continue  # an unknown provider or a grant that is no mapping: reported already
        for problem in grant_parameter_problems(spec.type, grant):
            at = f"roles.{name}.grant" + (f".{problem.key}" if problem.key else "")
            yield PolicyIssue(at, problem.message)


def _login_issues(draft: Draft, name: str, spec: PostgresProvider) -> Iterator[PolicyIssue]:
    at = f"providers.{name}"
    template_problem = login_template_errors(spec.login)
    if template_problem:
        yield PolicyIssue(f"{at}.login", template_problem)
    taken: dict[str, str] = {}
    for email, login in spec.logins.items():
        problem = login_name_problem(login)
        if problem is None and login in taken:
            problem = f"{login} is also the login of {taken[login]}"
        if problem:
            yield PolicyIssue(f"{at}.logins.{email}", problem)
        taken.setdefault(login, email)
    roles = [role for role in draft.roles.values() if role.provider == name]
    if template_problem or not roles:
        return  # nobody is granted anything through it
    names = LoginNames(spec.login, spec.logins)
    granted = {grant for role in roles if isinstance(grant := role.grant.get("role"), str)}
    owners: dict[str, tuple[str, str]] = {}  # login -> (email, where named)
    for email, where in _known_people(draft, at, spec.logins).items():
        login = names.of(email)
        if email not in spec.logins and (problem := login_name_problem(login)):
            yield PolicyIssue(
                where, f"{email}'s login from {at}.login: {problem}; {_fix(at, 'them')}"
            )
            continue
        if login in granted:
            yield PolicyIssue(
                where, f"{email} would get login {login}, a role that {name} grants; "
                f"{_fix(at, 'them')}"
            )
            continue
        first = owners.setdefault(login, (email, where))
        if first[0] != email:
            yield PolicyIssue(
                where,
                f"{email} and {first[0]} ({first[1]}) would share the PostgreSQL login "
                f"{login} on {name}; {_fix(at, 'one of them')}",
            )


def _fix(at: str, who: str) -> str:
    return f"give {who} a login of their own in {at}.logins"


def _known_people(draft: Draft, at: str, logins: Mapping[str, str]) -> dict[str, str]:
    """Every email the policy names, with the YAML path where it is first named."""
    people: dict[str, str] = {}
    for section in ("admins", "auditors"):
        for index, email in enumerate(getattr(draft, section)):
            people.setdefault(email, f"{section}[{index}]")
    for group, members in draft.groups.items():
        for index, email in enumerate(members):
            people.setdefault(email, f"groups.{group}[{index}]")
    for role_name, role in draft.roles.items():
        for index, entry in enumerate(role.approval.approvers):
            if not entry.startswith("group:"):
                people.setdefault(entry, f"roles.{role_name}.approval.approvers[{index}]")
    for index, assignment in draft.assignments:
        people.setdefault(assignment.user, f"assignments[{index}].user")
    for index, review in draft.reviews:
        if isinstance(review.reviewers, list):
            for position, entry in enumerate(review.reviewers):
                if isinstance(entry, str) and "@" in entry and not entry.startswith("group:"):
                    where = f"reviews[{index}].reviewers[{position}]"
                    people.setdefault(entry.strip().lower(), where)
    for email in logins:
        people.setdefault(email, f"{at}.logins.{email}")
    return people
