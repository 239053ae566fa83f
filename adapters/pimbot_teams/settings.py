"""Teams settings, built from the environment mapping the composition root hands over.

``MICROSOFT_APP_ID`` / ``MICROSOFT_APP_PASSWORD`` / ``MICROSOFT_APP_TENANT_ID`` /
``MICROSOFT_APP_TYPE`` are the names Microsoft's samples use. With both credentials empty the
adapter runs only with ``PIMBOT_TEAMS_DEV_MODE=1`` (no request is authenticated: anyone who
can reach ``/api/messages`` could post activities and choose where replies go), otherwise it
refuses to start and says why.

The endpoints are settings so sovereign clouds and tests can point them elsewhere:
``PIMBOT_TEAMS_OPENID_METADATA_URL`` (where the Bot Connector's signing keys are published),
``PIMBOT_TEAMS_TOKEN_ISSUER`` (the ``iss`` of its tokens), ``PIMBOT_TEAMS_LOGIN_URL`` (the
Entra authority pimbot gets its own outbound token from) and ``PIMBOT_TEAMS_OAUTH_SCOPE``
(that token's scope).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pimbot.domain.errors import ErrorCode, PimError

DEFAULT_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEFAULT_TOKEN_ISSUER = "https://api.botframework.com"
DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
MULTI_TENANT_AUTHORITY = "botframework.com"
DEFAULT_IDENTITY_TTL_S = 3600.0
_SPLIT = re.compile(r"[\s,;]+")


class AppType(StrEnum):
    MULTI_TENANT = "MultiTenant"
    SINGLE_TENANT = "SingleTenant"


@dataclass(frozen=True)
class TeamsSettings:
    """Credentials and endpoints; the password is kept out of ``repr`` (and so out of logs)."""

    app_id: str = ""
    app_password: str = field(default="", repr=False)
    tenant_ids: tuple[str, ...] = ()
    app_type: AppType = AppType.MULTI_TENANT
    dev_mode: bool = False
    openid_metadata_url: str = DEFAULT_OPENID_METADATA_URL
    token_issuer: str = DEFAULT_TOKEN_ISSUER
    login_url: str = DEFAULT_LOGIN_URL
    oauth_scope: str = BOT_FRAMEWORK_SCOPE
    identity_ttl_s: float = DEFAULT_IDENTITY_TTL_S

    @property
    def authenticates(self) -> bool:
        """Every inbound request's token is checked (always, unless dev mode without an id)."""
        return bool(self.app_id)

    @property
    def token_url(self) -> str:
        """Where pimbot asks for its own Bot Connector token (client credentials)."""
        tenant = MULTI_TENANT_AUTHORITY
        if self.app_type is AppType.SINGLE_TENANT and self.tenant_ids:
            tenant = self.tenant_ids[0]
        return f"{self.login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"

    def serves_tenant(self, tenant_id: str) -> bool:
        """Only the configured tenants are served (any, in dev mode without a tenant)."""
        if not self.tenant_ids:
            return self.dev_mode and not self.app_id
        return tenant_id.lower() in self.tenant_ids

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TeamsSettings:
        app_id = env.get("MICROSOFT_APP_ID", "").strip()
        password = env.get("MICROSOFT_APP_PASSWORD", "").strip()
        dev_mode = env.get("PIMBOT_TEAMS_DEV_MODE", "").strip() == "1"
        tenants = tuple(t.lower() for t in _SPLIT.split(env.get("MICROSOFT_APP_TENANT_ID", ""))
                        if t)
        problem = credential_problem(app_id, password, dev_mode, tenants)
        if problem is not None:
            raise problem
        return cls(
            app_id=app_id,
            app_password=password,
            tenant_ids=tenants,
            app_type=_app_type(env.get("MICROSOFT_APP_TYPE", "")),
            dev_mode=dev_mode,
            openid_metadata_url=_url(env, "PIMBOT_TEAMS_OPENID_METADATA_URL",
                                     DEFAULT_OPENID_METADATA_URL),
            token_issuer=_url(env, "PIMBOT_TEAMS_TOKEN_ISSUER", DEFAULT_TOKEN_ISSUER),
            login_url=_url(env, "PIMBOT_TEAMS_LOGIN_URL", DEFAULT_LOGIN_URL),
            oauth_scope=_url(env, "PIMBOT_TEAMS_OAUTH_SCOPE", BOT_FRAMEWORK_SCOPE),
        )


def credential_problem(app_id: str, password: str, dev_mode: bool,
                       tenants: tuple[str, ...]) -> PimError | None:
    """Why Teams cannot start with these credentials (None when it can)."""
    if not app_id and not password:
        if dev_mode:
            return None
        return PimError(
            ErrorCode.NOT_AVAILABLE,
            "MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD are empty, so requests to /api/messages "
            "could not be authenticated; the Teams adapter stays off",
            "set both from the Azure Bot registration, or PIMBOT_TEAMS_DEV_MODE=1 for the "
            "Bot Framework Emulator and local tests only",
        )
    if not app_id or not password:
        missing = "MICROSOFT_APP_ID" if not app_id else "MICROSOFT_APP_PASSWORD"
        return PimError(
            ErrorCode.NOT_AVAILABLE,
            f"{missing} is empty, and Teams needs both the app id and its client secret; "
            "the Teams adapter stays off",
            "copy both from the Azure Bot registration (Configuration → Manage Password)",
        )
    if not tenants:
        return PimError(
            ErrorCode.NOT_AVAILABLE,
            "MICROSOFT_APP_TENANT_ID is empty, and pimbot serves only the Entra tenants named "
            "there; the Teams adapter stays off",
            "MICROSOFT_APP_TENANT_ID=<your tenant id> (several: separated by commas)",
        )
    return None


def _app_type(raw: str) -> AppType:
    text = raw.strip()
    if not text:
        return AppType.MULTI_TENANT
    for kind in AppType:
        if kind.value.lower() == text.lower():
            return kind
    raise PimError(
        ErrorCode.NOT_AVAILABLE,
        f"MICROSOFT_APP_TYPE={raw!r} is not supported by pimbot's Teams adapter",
        "MICROSOFT_APP_TYPE=SingleTenant or MultiTenant (a managed identity is not supported)",
    )


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default
