"""Build every provider the policy names from its settings (the policy's ``providers:``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pimbot.domain.model import ProviderConfig
from pimbot.ports import Clock, Provider, SystemClock
from pimbot.providers.concurrency import KEY as CONCURRENCY_KEY
from pimbot.providers.concurrency import max_concurrency
from pimbot.providers.drift import read_drift
from pimbot.providers.errors import ProviderConfigError
from pimbot.providers.microsoft.ids import (
    azure_rbac_problems,
    entra_group_problems,
    entra_role_problems,
)
from pimbot.providers.noop import NoopProvider
from pimbot.providers.postgres_names import (
    GrantProblem,
    grant_problems,
    login_name_problem,
    login_template_errors,
)
from pimbot.providers.settings import SettingsReader
from pimbot.providers.wire import json_value_problem

if TYPE_CHECKING:
    import aiohttp

# Each builder imports its provider's module (aiohttp, asyncpg, subprocess handling) when a
# policy names that type: `pimbot run` on a noop or webhook policy never loads asyncpg.


class ProviderType(StrEnum):
    NOOP = "noop"
    WEBHOOK = "webhook"
    POSTGRES = "postgres"
    COMMAND = "command"
    ENTRA_GROUP = "entra-group"
    ENTRA_ROLE = "entra-role"
    AZURE_RBAC = "azure-rbac"


# every provider takes them (max_concurrency: ``providers/concurrency.py``)
DRIFT_KEYS = ("drift", "reconcile_every", "allow", CONCURRENCY_KEY)


@dataclass(frozen=True)
class BuildContext:
    env: Mapping[str, str]
    clock: Clock
    http: aiohttp.ClientSession | None


def build_providers(
    configs: Mapping[str, ProviderConfig],
    env: Mapping[str, str],
    *,
    http: aiohttp.ClientSession | None = None,
    clock: Clock | None = None,
) -> dict[str, Provider]:
    """One Provider per configured name; raises ProviderConfigError for the first bad setting.

    Nothing connects here: sessions and connections are opened on first use.
    """
    context = BuildContext(env=env, clock=clock or SystemClock(), http=http)
    return {name: build_provider(config, context) for name, config in configs.items()}


def provider_config_errors(
    configs: Mapping[str, ProviderConfig], env: Mapping[str, str]
) -> list[ProviderConfigError]:
    """Every provider's first configuration error (for ``pimbot policy validate``)."""
    context = BuildContext(env=env, clock=SystemClock(), http=None)
    errors: list[ProviderConfigError] = []
    for config in configs.values():
        try:
            build_provider(config, context)
        except ProviderConfigError as exc:
            errors.append(exc)
    return errors


def grant_parameter_problems(provider_type: str, grant: Mapping[str, Any]) -> list[GrantProblem]:
    """What a provider of this type would refuse in a role's ``grant:`` parameters, found
    without connecting anywhere (``pimbot policy validate``, plan, apply and run check it)."""
    if provider_type == ProviderType.POSTGRES:
        return grant_problems(grant)
    if provider_type in _MICROSOFT_GRANTS:
        return _MICROSOFT_GRANTS[ProviderType(provider_type)](grant)
    if provider_type in (ProviderType.WEBHOOK, ProviderType.COMMAND, ProviderType.NOOP):
        # sent as JSON: the webhook's body, the command's PIMBOT_GRANT
        return [
            GrantProblem(str(key), problem)
            for key, value in grant.items()
            if (problem := json_value_problem(value)) is not None
        ]
    return []  # an unknown or unavailable type is reported at providers.NAME.type


def build_provider(config: ProviderConfig, context: BuildContext) -> Provider:
    known = ", ".join(ProviderType)
    try:
        kind = ProviderType(config.type)
    except ValueError:
        raise ProviderConfigError(
            f"providers.{config.name}.type",
            f"unknown provider type {config.type!r}",
            f"type: one of {known}",
        ) from None
    max_concurrency(config)
    return _BUILDERS[kind](config, context)


def _noop(config: ProviderConfig, context: BuildContext) -> Provider:
    read_drift(SettingsReader(config, allowed=DRIFT_KEYS), config.type)
    return NoopProvider(config.name)


def _webhook(config: ProviderConfig, context: BuildContext) -> Provider:
    from pimbot.providers.webhook import WebhookProvider

    s = SettingsReader(config, allowed=("url", "secret_env", "timeout", *DRIFT_KEYS))
    read_drift(s, config.type)
    url = s.required_str("url", "https://iam.example.com/pim")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderConfigError(
            s.path("url"), "must be an http(s) URL", "url: https://iam.example.com/pim"
        )
    secret_env = s.required_str("secret_env", "PIM_HOOK_SECRET")
    secret = context.env.get(secret_env, "")
    if not secret:
        raise ProviderConfigError(
            s.path("secret_env"),
            f"the environment variable {secret_env} is not set",
            f"export {secret_env}=<a long random string shared with the receiver>",
        )
    return WebhookProvider(
        config.name,
        url,
        secret,
        context.clock,
        timeout=s.positive_seconds("timeout", 10.0),
        http=context.http,
    )


def _postgres(config: ProviderConfig, context: BuildContext) -> Provider:
    from pimbot.providers.postgres import PostgresProvider

    s = SettingsReader(config, allowed=("dsn", "dsn_env", "login", "logins", "timeout",
                                        *DRIFT_KEYS))
    drift = read_drift(s, config.type)
    dsn = _postgres_dsn(s, context.env)
    login = s.optional_str("login", "{email_local}", '"{email_local}"')
    problem = login_template_errors(login)
    if problem:
        raise ProviderConfigError(s.path("login"), problem, 'login: "{email_local}"')
    logins = s.str_mapping("logins", "logins: {bob.smith@example.com: bsmith}")
    taken: dict[str, str] = {}
    for email, name in logins.items():
        problem = login_name_problem(name) or (
            f"is also the login of {taken[name]}" if name in taken else None
        )
        if problem:
            raise ProviderConfigError(f"{s.path('logins')}.{email}", problem)
        taken[name] = email
    return PostgresProvider(
        config.name,
        dsn,
        login=login,
        logins=logins,
        drift=drift.mode,
        timeout=s.positive_seconds("timeout", 10.0),
    )


def _postgres_dsn(s: SettingsReader, env: Mapping[str, str]) -> str:
    """``dsn`` in the policy, or ``dsn_env`` naming a variable that holds it (with a password)."""
    example = "postgresql://pimbot@db.example.com/prod"
    if s.has("dsn_env"):
        name = s.required_str("dsn_env", "PIMBOT_PROD_DSN")
        dsn = env.get(name, "")
        if not dsn:
            raise ProviderConfigError(
                s.path("dsn_env"), f"the environment variable {name} is not set"
            )
        key = "dsn_env"
    else:
        dsn, key = s.required_str("dsn", example), "dsn"
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ProviderConfigError(s.path(key), "must be a postgresql:// DSN", f"dsn: {example}")
    return dsn


def _command(config: ProviderConfig, context: BuildContext) -> Provider:
    from pimbot.providers.command import CommandAction, CommandProvider, child_env

    s = SettingsReader(
        config, allowed=("grant", "revoke", "check", "timeout", "pass_env", *DRIFT_KEYS)
    )
    read_drift(s, config.type)
    commands = {action: s.argv(str(action)) for action in CommandAction}
    return CommandProvider(
        config.name,
        commands,
        env=child_env(context.env, s.str_list("pass_env")),
        timeout=s.positive_seconds("timeout", 30.0),
    )


def _microsoft(config: ProviderConfig, context: BuildContext) -> Provider:
    from pimbot.providers.microsoft.settings import build_microsoft

    return build_microsoft(config, context.env, context.clock, context.http)


_BUILDERS: dict[ProviderType, Callable[[ProviderConfig, BuildContext], Provider]] = {
    ProviderType.NOOP: _noop,
    ProviderType.WEBHOOK: _webhook,
    ProviderType.POSTGRES: _postgres,
    ProviderType.COMMAND: _command,
    ProviderType.ENTRA_GROUP: _microsoft,
    ProviderType.ENTRA_ROLE: _microsoft,
    ProviderType.AZURE_RBAC: _microsoft,
}
_MICROSOFT_GRANTS: dict[ProviderType, Callable[[Mapping[str, Any]], list[GrantProblem]]] = {
    ProviderType.ENTRA_GROUP: entra_group_problems,
    ProviderType.ENTRA_ROLE: entra_role_problems,
    ProviderType.AZURE_RBAC: azure_rbac_problems,
}
