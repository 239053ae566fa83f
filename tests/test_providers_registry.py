"""Building providers from the policy: clear errors that name providers.NAME.KEY."""

from __future__ import annotations

import logging

import pytest

from pimbot.domain.model import ProviderConfig
from pimbot.providers import (
    ProviderConfigError,
    build_providers,
    provider_config_errors,
)
from pimbot.providers.postgres import PostgresProvider
from providers_support import make_target

ENV = {"PIM_HOOK_SECRET": "x" * 32}
VALID = {
    "sandbox": ProviderConfig("sandbox", "noop"),
    "hooks": ProviderConfig(
        "hooks", "webhook", {"url": "https://iam.example.com/pim", "secret_env": "PIM_HOOK_SECRET"}
    ),
    "proddb": ProviderConfig(
        "proddb", "postgres", {"dsn": "postgresql://pimbot@db/prod", "login": "{email_local}"}
    ),
    "script": ProviderConfig(
        "script", "command", {"grant": ["/bin/true"], "revoke": ["/bin/true"], "check": ["true"]}
    ),
}


def build_error(config: ProviderConfig, env: dict[str, str] | None = None) -> ProviderConfigError:
    with pytest.raises(ProviderConfigError) as raised:
        build_providers({config.name: config}, env or {})
    return raised.value


def test_builds_every_configured_provider_by_name() -> None:
    providers = build_providers(VALID, ENV)
    assert sorted(providers) == ["hooks", "proddb", "sandbox", "script"]
    assert provider_config_errors(VALID, ENV) == []


def test_unknown_type_is_named_with_the_known_ones() -> None:
    error = build_error(ProviderConfig("iam", "ldap"))
    assert error.path == "providers.iam.type"
    assert "unknown provider type 'ldap'" in str(error)
    assert "noop, webhook, postgres, command" in str(error)


@pytest.mark.parametrize("kind", ["entra", "azure"])
def test_the_old_reserved_cloud_names_point_at_the_real_types(kind: str) -> None:
    error = build_error(ProviderConfig("cloud", kind))
    assert str(error).startswith(f"providers.cloud.type: unknown provider type '{kind}'")
    assert "entra-group, entra-role, azure-rbac" in str(error)


@pytest.mark.parametrize(
    ("config", "path"),
    [
        (ProviderConfig("h", "webhook", {"secret_env": "PIM_HOOK_SECRET"}), "providers.h.url"),
        (ProviderConfig("h", "webhook", {"url": "https://x.example"}), "providers.h.secret_env"),
        (ProviderConfig("h", "webhook", {"url": "ftp://x", "secret_env": "S"}), "providers.h.url"),
        (ProviderConfig("db", "postgres", {"login": "{email_local}"}), "providers.db.dsn"),
        (ProviderConfig("db", "postgres", {"dsn": "mysql://db/x"}), "providers.db.dsn"),
        (ProviderConfig("db", "postgres", {"dsn_env": "NOPE"}), "providers.db.dsn_env"),
        (ProviderConfig("c", "command", {"grant": ["a"], "revoke": ["b"]}), "providers.c.check"),
        (ProviderConfig("c", "command", {"grant": "a b", "revoke": ["b"]}), "providers.c.grant"),
        (ProviderConfig("n", "noop", {"colour": "red"}), "providers.n.colour"),
    ],
)
def test_missing_or_bad_settings_name_their_path(config: ProviderConfig, path: str) -> None:
    error = build_error(config, {"S": "secret"})
    assert error.path == path
    assert str(error).startswith(f"{path}: ")


@pytest.mark.parametrize("timeout", [0, -1, "10s", True])
def test_timeout_must_be_positive_seconds(timeout: object) -> None:
    config = ProviderConfig(
        "h", "webhook", {"url": "https://x.example", "secret_env": "S", "timeout": timeout}
    )
    assert build_error(config, {"S": "secret"}).path == "providers.h.timeout"


@pytest.mark.parametrize("kind", ["webhook", "postgres", "command"])
def test_a_provider_timeout_stays_well_inside_the_grant_lease(kind: str) -> None:
    settings = {"webhook": {"url": "https://x.example", "secret_env": "S"},
                "postgres": {"dsn": "postgresql://pimbot@db/prod"},
                "command": {"grant": ["/bin/true"], "revoke": ["/bin/true"],
                            "check": ["/bin/true"]}}[kind]
    too_long = ProviderConfig("p", kind, {**settings, "timeout": 60})
    error = build_error(too_long, {"S": "secret"})
    assert error.path == "providers.p.timeout" and "at most 30 seconds" in error.reason
    build_providers({"p": ProviderConfig("p", kind, {**settings, "timeout": 30})}, {"S": "s"})


@pytest.mark.parametrize(
    "login", ["{name}", "fixed_login", "{email_local!r}", "{email_local", "{}"]
)
def test_postgres_login_template_is_checked(login: str) -> None:
    config = ProviderConfig("db", "postgres", {"dsn": "postgresql://db/x", "login": login})
    assert build_error(config).path == "providers.db.login"


@pytest.mark.parametrize(
    ("logins", "path"),
    [
        ("bob@example.com: bob", "providers.db.logins"),
        ({"bob@example.com": "pg_bob"}, "providers.db.logins.bob@example.com"),
        ({"a@example.com": "ab", "b@example.com": "ab"}, "providers.db.logins.b@example.com"),
    ],
)
def test_postgres_login_overrides_are_checked(logins: object, path: str) -> None:
    config = ProviderConfig("db", "postgres", {"dsn": "postgresql://db/x", "logins": logins})
    assert build_error(config).path == path


def test_postgres_drift_and_dsn_env_are_read() -> None:
    config = ProviderConfig(
        "db", "postgres", {"dsn_env": "PROD_DSN", "drift": "ignore", "login": "pim_{email_local}"}
    )
    provider = build_providers({"db": config}, {"PROD_DSN": "postgresql://u:pw@db/x"})["db"]
    assert isinstance(provider, PostgresProvider)
    assert provider.drift == "off"  # "ignore" is the older spelling of "off"
    assert (
        build_error(
            ProviderConfig("db", "postgres", {**config.settings, "drift": "shout"}),
            {"PROD_DSN": "postgresql://db/x"},
        ).path
        == "providers.db.drift"
    )


def test_config_errors_are_collected_for_every_provider() -> None:
    configs = {
        **VALID,
        "bad1": ProviderConfig("bad1", "ldap"),
        "bad2": ProviderConfig("bad2", "webhook", {"url": "https://x.example"}),
    }
    errors = provider_config_errors(configs, ENV)
    assert [e.path for e in errors] == ["providers.bad1.type", "providers.bad2.secret_env"]


async def test_noop_logs_the_grant_and_answers_consistently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = build_providers({"sandbox": VALID["sandbox"]}, {})["sandbox"]
    target = make_target()
    with caplog.at_level(logging.INFO, logger="pimbot.providers"):
        await provider.grant(target)
    assert "noop: granted prod-db-admin to bob@example.com" in caplog.messages
    assert await provider.check(target) is True
