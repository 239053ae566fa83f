"""Tokens for Microsoft Graph and Azure Resource Manager from azure-identity's async
credentials: a client secret, a certificate, a managed identity or a workload identity.

The credential is built on first use, inside the running event loop, over the provider's own
aiohttp session (so its TLS trust is the provider's: the system store, ``SSL_CERT_FILE``, or a
test's CA). azure-identity caches tokens and renews them before they expire; when a service
still says a token has expired (clock skew, a revoked session), ``renew`` drops the credential
and its cache, and the next call gets a fresh token. Secrets and tokens are never logged and
never part of an error message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import aiohttp

from pimbot.providers.errors import ProviderError

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

log = logging.getLogger(__name__)

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
# azure-core logs every request's headers at INFO; pimbot's own lines say what happened.
_QUIET_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.identity")


class CredentialKind(StrEnum):
    CLIENT_SECRET = "client secret"
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed identity"
    WORKLOAD_IDENTITY = "workload identity"


@dataclass(frozen=True)
class CredentialSpec:
    kind: CredentialKind
    tenant_id: str
    client_id: str | None  # None: a system-assigned managed identity
    authority: str = PUBLIC_AUTHORITY  # a bare base URL, e.g. https://login.microsoftonline.us
    secret: str = field(default="", repr=False)
    certificate_path: str = ""
    certificate_password: str = field(default="", repr=False)
    token_file: str = ""  # workload identity: the federated token's file

    def describe(self) -> str:
        who = f"app {self.client_id}" if self.client_id else "the system-assigned identity"
        return f"{self.kind} of {who} in tenant {self.tenant_id}"


def azure_identity_available() -> bool:
    try:
        import azure.identity.aio  # noqa: F401
    except ImportError:
        return False
    return True


def build_credential(spec: CredentialSpec, http: aiohttp.ClientSession) -> AsyncTokenCredential:
    """The azure-identity credential for ``spec``, over ``http`` (which it does not close)."""
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.identity.aio import (
        CertificateCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    common: dict[str, Any] = {"transport": AioHttpTransport(session=http, session_owner=False)}
    match spec.kind:
        case CredentialKind.CLIENT_SECRET:
            assert spec.client_id is not None
            return ClientSecretCredential(spec.tenant_id, spec.client_id, spec.secret,
                                          authority=spec.authority, **common)
        case CredentialKind.CERTIFICATE:
            assert spec.client_id is not None
            return CertificateCredential(
                spec.tenant_id, spec.client_id, spec.certificate_path,
                password=spec.certificate_password or None, authority=spec.authority, **common)
        case CredentialKind.WORKLOAD_IDENTITY:
            return WorkloadIdentityCredential(
                tenant_id=spec.tenant_id, client_id=spec.client_id,
                token_file_path=spec.token_file, authority=spec.authority, **common)
        case CredentialKind.MANAGED_IDENTITY:
            return ManagedIdentityCredential(client_id=spec.client_id, **common)


class TokenSource:
    """One provider's tokens, per scope (``https://graph.microsoft.com/.default``, …)."""

    def __init__(self, provider: str, spec: CredentialSpec) -> None:
        self._provider = provider
        self._spec = spec
        self._credential: AsyncTokenCredential | None = None

    async def token(self, scope: str, http: aiohttp.ClientSession) -> str:
        from azure.core.exceptions import AzureError, ClientAuthenticationError

        if self._credential is None:
            self._credential = build_credential(self._spec, http)
        try:
            return (await self._credential.get_token(scope)).token
        except ClientAuthenticationError as exc:
            # A refused credential (a wrong secret, an unknown app) does not mend by itself.
            status = getattr(exc, "status_code", None)
            raise ProviderError(
                f"{self._provider}: no token for {scope} with the {self._spec.describe()}: "
                f"{_first_line(exc)}",
                retryable=status is None or status >= 500,
                public="pimbot could not sign in to Microsoft Entra ID",
            ) from None
        except AzureError as exc:
            raise ProviderError(f"{self._provider}: no token for {scope}: "
                                f"{type(exc).__name__}: {_first_line(exc)}") from None

    async def renew(self) -> None:
        """Forget the credential and its cached tokens (a service rejected one)."""
        await self.close()
        log.info("%s: a token was rejected as expired; signing in again", self._provider)

    async def close(self) -> None:
        credential, self._credential = self._credential, None
        if credential is not None:
            await credential.close()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
