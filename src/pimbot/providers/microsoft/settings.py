"""Reading an entra-group, entra-role or azure-rbac provider's settings from the policy.

    entra: {type: entra-group, tenant_id: GUID, client_id: GUID,
            client_secret_env: PIM_GRAPH_SECRET}   # or certificate_path: /path/app.pem
                                                   # (certificate_password_env: NAME),
                                                   # managed_identity: true (client_id: a
                                                   # user-assigned one), workload_identity:
                                                   # true (federated_token_file, default
                                                   # $AZURE_FEDERATED_TOKEN_FILE)
    mode: direct | pim; authority, graph_url (and arm_url for azure-rbac): bare https URLs
    of a national cloud; timeout (at most 30 s); drift, reconcile_every, allow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlsplit

import aiohttp

from pimbot.domain.model import ProviderConfig
from pimbot.ports import Clock
from pimbot.providers.drift import read_drift
from pimbot.providers.errors import ProviderConfigError
from pimbot.providers.microsoft.base import (
    PUBLIC_ARM,
    PUBLIC_GRAPH,
    MicrosoftProvider,
    MicrosoftSettings,
)
from pimbot.providers.microsoft.credentials import (
    PUBLIC_AUTHORITY,
    CredentialKind,
    CredentialSpec,
    azure_identity_available,
)
from pimbot.providers.microsoft.ids import guid_problem, tenant_problem
from pimbot.providers.microsoft.refs import Mode
from pimbot.providers.settings import SettingsReader

COMMON_KEYS = (
    "tenant_id", "client_id", "client_secret_env", "certificate_path",
    "certificate_password_env", "managed_identity", "workload_identity",
    "federated_token_file", "authority", "graph_url", "mode", "timeout", "drift",
    "reconcile_every", "allow", "max_concurrency",
)
CREDENTIAL_KEYS = ("client_secret_env", "certificate_path", "managed_identity",
                   "workload_identity")
DEFAULT_TIMEOUT = 20.0


def build_microsoft(config: ProviderConfig, env: Mapping[str, str], clock: Clock,
                    http: aiohttp.ClientSession | None) -> MicrosoftProvider:
    from pimbot.providers.microsoft.azure_rbac import AzureRbacProvider
    from pimbot.providers.microsoft.directory_roles import EntraRoleProvider
    from pimbot.providers.microsoft.groups import EntraGroupProvider

    kinds: dict[str, type[MicrosoftProvider]] = {
        "entra-group": EntraGroupProvider, "entra-role": EntraRoleProvider,
        "azure-rbac": AzureRbacProvider}
    arm = config.type == "azure-rbac"
    s = SettingsReader(config, allowed=(*COMMON_KEYS, "arm_url") if arm else COMMON_KEYS)
    if not azure_identity_available():
        raise ProviderConfigError(f"providers.{config.name}.type",
                                  f"a {config.type} provider needs azure-identity",
                                  "pip install 'pimbot[azure]'")
    read_drift(s, config.type)
    settings = MicrosoftSettings(
        credential=_credential(s, env),
        mode=Mode(s.choice("mode", list(Mode), Mode.DIRECT)),
        graph_url=_base_url(s, "graph_url", PUBLIC_GRAPH),
        arm_url=_base_url(s, "arm_url", PUBLIC_ARM) if arm else PUBLIC_ARM,
        timeout=s.positive_seconds("timeout", DEFAULT_TIMEOUT),
    )
    return kinds[config.type](config.name, settings, clock, http=http)


def _base_url(s: SettingsReader, key: str, default: str) -> str:
    value = s.optional_str(key, default, default).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ProviderConfigError(s.path(key), f"must be an https:// URL, not {value!r}",
                                  f"{key}: {default}")
    if parts.path not in ("", "/"):
        raise ProviderConfigError(s.path(key), f"must be a bare base URL (no path such as "
                                  f"{parts.path!r}: pimbot adds versions and tenants itself)",
                                  f"{key}: {default}")
    return f"https://{parts.netloc}"


def _credential(s: SettingsReader, env: Mapping[str, str]) -> CredentialSpec:
    tenant = s.required_str("tenant_id", "<your tenant's id>")
    if (problem := tenant_problem(tenant)) is not None:
        raise ProviderConfigError(s.path("tenant_id"), problem)
    given = [k for k in CREDENTIAL_KEYS if s.has(k) and (
        k not in ("managed_identity", "workload_identity") or s.flag(k))]
    if not given:
        raise ProviderConfigError(
            s.path("client_secret_env"), "no credential: give one of client_secret_env, "
            "certificate_path, managed_identity: true or workload_identity: true",
            "client_secret_env: PIM_GRAPH_SECRET")
    if len(given) > 1:
        raise ProviderConfigError(s.path(given[1]), f"give one credential, not both "
                                  f"{given[0]} and {given[1]}")
    kind = {"client_secret_env": CredentialKind.CLIENT_SECRET,
            "certificate_path": CredentialKind.CERTIFICATE,
            "managed_identity": CredentialKind.MANAGED_IDENTITY,
            "workload_identity": CredentialKind.WORKLOAD_IDENTITY}[given[0]]
    client = _client_id(s, required=kind is not CredentialKind.MANAGED_IDENTITY)
    spec = CredentialSpec(kind, tenant, client,
                          authority=_base_url(s, "authority", PUBLIC_AUTHORITY))
    match kind:
        case CredentialKind.CLIENT_SECRET:
            return replace(spec, secret=_env_value(s, env, "client_secret_env"))
        case CredentialKind.CERTIFICATE:
            path = s.required_str("certificate_path", "/etc/pimbot/entra-app.pem")
            if not os.path.isfile(path):
                raise ProviderConfigError(s.path("certificate_path"), f"no file at {path} (a "
                                          "PEM or PKCS#12 file with the key and certificate)")
            password = _env_value(s, env, "certificate_password_env") \
                if s.has("certificate_password_env") else ""
            return replace(spec, certificate_path=path, certificate_password=password)
        case CredentialKind.WORKLOAD_IDENTITY:
            token_file = s.optional_str("federated_token_file",
                                        env.get("AZURE_FEDERATED_TOKEN_FILE", ""), "PATH")
            if not token_file:
                raise ProviderConfigError(
                    s.path("federated_token_file"), "no federated token file: set it, or run "
                    "where AZURE_FEDERATED_TOKEN_FILE is set (AKS workload identity)")
            return replace(spec, token_file=token_file)
        case CredentialKind.MANAGED_IDENTITY:
            return spec


def _client_id(s: SettingsReader, *, required: bool) -> str | None:
    if not required and not s.has("client_id"):
        return None
    client = s.required_str("client_id", "<the app's (client) id>")
    if (problem := guid_problem(client, "the application (client) id")) is not None:
        raise ProviderConfigError(s.path("client_id"), problem)
    return client


def _env_value(s: SettingsReader, env: Mapping[str, str], key: str) -> str:
    name = s.required_str(key, "PIM_GRAPH_SECRET")
    value = env.get(name, "")
    if not value:
        raise ProviderConfigError(s.path(key), f"the environment variable {name} is not set",
                                  f"export {name}=<the value, kept out of the policy file>")
    return value
