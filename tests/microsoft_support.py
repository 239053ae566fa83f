"""Microsoft providers pointed at the local fake cloud, for the provider tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from msfake import SUBSCRIPTION, MicrosoftCloud
from msfake.state import CONTRIBUTOR, GLOBAL_ADMIN
from pimbot.domain.model import ProviderConfig
from pimbot.providers import build_providers
from pimbot.providers.microsoft.base import MicrosoftProvider
from pimbot.testing.fakes import FakeClock

RESOURCE_GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod"
BOB, OTHER = "bob@example.com", "someone.else@example.com"


@dataclass
class Sleeps:
    """Stands in for asyncio.sleep: records each wait instead of waiting."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def grant_for(cloud: MicrosoftCloud, kind: str) -> dict[str, Any]:
    """The role's grant parameters for a provider of ``kind`` (creating the group)."""
    if kind == "entra-group":
        return {"group_id": cloud.state.add_group("prod-admins")}
    if kind == "entra-role":
        return {"role_definition_id": GLOBAL_ADMIN, "directory_scope_id": "/"}
    return {"scope": RESOURCE_GROUP, "role_definition_id": CONTRIBUTOR}


def build_microsoft(cloud: MicrosoftCloud, kind: str, *, mode: str = "direct",
                    clock: FakeClock | None = None, sleep: Sleeps | None = None,
                    **settings: Any) -> MicrosoftProvider:
    config = ProviderConfig("ms", kind, cloud.settings(mode=mode, arm=kind == "azure-rbac",
                                                       **settings))
    provider = build_providers({"ms": config}, cloud.env, http=cloud.session,
                               clock=clock or FakeClock())["ms"]
    assert isinstance(provider, MicrosoftProvider)
    if sleep is not None:
        for api in (provider.graph, getattr(provider, "arm", None)):
            if api is not None:
                api._sleep = sleep  # the injection seam of api.Api
    return provider


def people(cloud: MicrosoftCloud) -> dict[str, str]:
    """bob and someone.else as Entra users; their object ids by email."""
    return {email: cloud.state.add_user(email) for email in (BOB, OTHER)}


Check = Callable[[], Awaitable[bool]]
