"""The policy asks each provider about its grant parameters, and postgres about whose login is
whose: what a grant would refuse later is an error now, at its YAML path."""

from __future__ import annotations

import textwrap
from datetime import date

import pytest

from pimbot.policy import PolicyError, parse_policy
from pimbot.providers import build_providers, grant_parameter_problems

POLICY = """\
admins: [bob.smith@example.com]
groups:
  leads: [alice@example.com, Bob+Smith@other.example]
providers:
  proddb: {{type: postgres, dsn: "postgresql://pimbot@db/prod"{extra}}}
  hooks: {{type: webhook, url: "https://iam.example.com/pim", secret_env: HOOK_SECRET}}
  sandbox: {{type: noop}}
roles:
  prod-db-admin:
    provider: proddb
    grant: {grant}
    approval: {{required: true, approvers: [group:leads, carol@example.com]}}
  hook-role:
    provider: hooks
    grant: {{group: deployers, ttl: 3600, tags: [a, b]}}
assignments:
  - {{user: dave@example.com, role: prod-db-admin, type: eligible}}
"""


def policy(grant: str = "{role: app_admin}", extra: str = "") -> str:
    return POLICY.format(grant=grant, extra=extra)


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(textwrap.dedent(text), "pimbot.yaml")
    return [f"{issue.path}: {issue.message}" for issue in caught.value.issues]


COLLISION = (
    "groups.leads[1]: bob+smith@other.example and bob.smith@example.com (admins[0]) would share "
    "the PostgreSQL login bob_smith on proddb; give one of them a login of their own in "
    "providers.proddb.logins"
)


@pytest.mark.parametrize(
    ("grant", "found"),
    [
        ("{role: \"app'admin\"}", "roles.prod-db-admin.grant.role: \"app'admin\" is not a "
         "PostgreSQL role name ([A-Za-z_][A-Za-z0-9_.-]*, at most 63 characters)"),
        ("{role: 'app admin'}", "roles.prod-db-admin.grant.role: 'app admin' is not a "
         "PostgreSQL role name ([A-Za-z_][A-Za-z0-9_.-]*, at most 63 characters)"),
        ("{role: [app_admin]}", "roles.prod-db-admin.grant.role: ['app_admin'] is not a "
         "PostgreSQL role name ([A-Za-z_][A-Za-z0-9_.-]*, at most 63 characters)"),
        ("{}", "roles.prod-db-admin.grant.role: is required: the PostgreSQL role to grant"),
        ("{role: app_admin, rol: x}",
         "roles.prod-db-admin.grant.rol: unknown key for a postgres grant (known: role)"),
    ],
)  # fmt: skip
def test_a_postgres_grant_the_provider_would_refuse_is_an_error(grant: str, found: str) -> None:
    text = policy(grant, extra=", logins: {bob+smith@other.example: bsmith}")
    assert problems(text) == [found]


def test_people_who_would_share_a_login_are_reported_where_they_are_named() -> None:
    assert problems(policy()) == [COLLISION]


def test_a_login_override_gives_a_person_their_own_login() -> None:
    parsed = parse_policy(policy(extra=", logins: {Bob+Smith@other.example: bsmith}"))
    settings = parsed.providers["proddb"].settings
    assert settings["logins"] == {"bob+smith@other.example": "bsmith"}
    assert set(build_providers(parsed.providers, {"HOOK_SECRET": "s3cret"})) == {
        "proddb", "hooks", "sandbox"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("logins", "found"),
    [
        ("{bob+smith@other.example: pg_bob}", "providers.proddb.logins.bob+smith@other.example: "
         "'pg_bob' is not a usable login name (pg_ names are reserved by PostgreSQL)"),
        ("{bob+smith@other.example: \"b'ob\"}", "providers.proddb.logins.bob+smith@other.example:"
         " \"b'ob\" is not a usable login name ([A-Za-z0-9_] then [A-Za-z0-9_@.+-], at most 63 "
         "characters)"),
        ("{bob: bsmith}", "providers.proddb.logins: 'bob' is not an email (logins maps emails "
         "to logins)"),
    ],
)  # fmt: skip
def test_login_overrides_are_checked(logins: str, found: str) -> None:
    assert found in problems(policy(extra=f", logins: {logins}"))


def test_an_override_onto_someone_elses_login_is_a_collision() -> None:
    extra = ", logins: {Bob+Smith@other.example: bsmith, carol@example.com: bob_smith}"
    assert problems(policy(extra=extra)) == [
        "roles.prod-db-admin.approval.approvers[1]: carol@example.com and bob.smith@example.com "
        "(admins[0]) would share the PostgreSQL login bob_smith on proddb; give one of them a "
        "login of their own in providers.proddb.logins"
    ]
    extra = ", logins: {Bob+Smith@other.example: dave, alice@example.com: dave}"
    assert "providers.proddb.logins.alice@example.com: dave is also the login of " \
        "bob+smith@other.example" in problems(policy(extra=extra))  # fmt: skip


def test_a_person_whose_login_is_a_granted_role_is_an_error() -> None:
    text = policy(extra=", logins: {Bob+Smith@other.example: bsmith}").replace(
        "dave@example.com", "app_admin@example.com"
    )
    assert problems(text) == [
        "assignments[0].user: app_admin@example.com would get login app_admin, a role that "
        "proddb grants; give them a login of their own in providers.proddb.logins"
    ]


def test_a_template_that_gives_an_unusable_login_is_an_error() -> None:
    text = policy(extra=', login: "pg_{email_local}", logins: {Bob+Smith@other.example: bs}')
    found = problems(text)
    assert found[0] == (
        "admins[0]: bob.smith@example.com's login from providers.proddb.login: 'pg_bob_smith' is "
        "not a usable login name (pg_ names are reserved by PostgreSQL); give them a login of "
        "their own in providers.proddb.logins"
    )


def test_other_providers_take_any_json_grant_parameters() -> None:
    parsed = parse_policy(policy(extra=", logins: {Bob+Smith@other.example: bsmith}"))
    hook = parsed.roles["hook-role"]
    assert hook.grant == {"group": "deployers", "ttl": 3600, "tags": ["a", "b"]}


@pytest.mark.parametrize("kind", ["webhook", "command", "noop"])
def test_json_providers_refuse_what_they_cannot_send(kind: str) -> None:
    grant = {"group": "ok", "when": date(2026, 1, 1), "ratio": float("nan")}
    found = grant_parameter_problems(kind, grant)
    assert [problem.key for problem in found] == ["when", "ratio"]
    assert grant_parameter_problems(kind, {"group": "ok", "n": [1, {"a": None}]}) == []
