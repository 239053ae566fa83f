"""What the three Microsoft providers share: settings, the Graph client, people, sessions."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import aiohttp

from pimbot.ports import Clock, GrantTarget
from pimbot.providers.holders import Holder, ProbeFinding
from pimbot.providers.microsoft.api import Api, Budget, Service, Sleep
from pimbot.providers.microsoft.credentials import CredentialSpec, TokenSource
from pimbot.providers.microsoft.people import People, Person
from pimbot.providers.microsoft.refs import MicrosoftRef, Mode, iso_or_none
from pimbot.providers.wire import iso_utc

log = logging.getLogger(__name__)

PUBLIC_GRAPH = "https://graph.microsoft.com"
PUBLIC_ARM = "https://management.azure.com"


@dataclass(frozen=True)
class MicrosoftSettings:
    credential: CredentialSpec
    mode: Mode = Mode.DIRECT
    graph_url: str = PUBLIC_GRAPH
    arm_url: str = PUBLIC_ARM
    timeout: float = 20.0


class MicrosoftProvider(ABC):
    """Base of entra-group, entra-role and azure-rbac: one session, one credential. Each
    implements the ``Provider`` port, ``HolderListing`` and ``Probing``."""

    kind = "microsoft"

    @abstractmethod
    async def grant(self, target: GrantTarget) -> str | None: ...

    @abstractmethod
    async def revoke(self, target: GrantTarget, ref: str | None) -> None: ...

    @abstractmethod
    async def check(self, target: GrantTarget) -> bool: ...

    @abstractmethod
    async def holders(self, grant: Mapping[str, Any]) -> list[Holder]: ...

    @abstractmethod
    async def remove_holder(self, grant: Mapping[str, Any], holder: Holder) -> None: ...

    @abstractmethod
    async def probe(self, grants: Sequence[Mapping[str, Any]]) -> list[ProbeFinding]: ...

    @abstractmethod
    async def pim_extend(self, target: GrantTarget, principal: str, budget: Budget) -> None:
        """Ask PIM to end the principal's active assignment at ``target.expires_at`` (an
        ``adminExtend`` request); if PIM has ended it already, assign it again until then."""

    async def extend(self, target: GrantTarget, ref: str | None) -> str | None:
        """``Extending``: in mode pim, PIM's own end of the grant moves to the new end (else
        Entra or Azure would take the access away at the end first sent). Nothing is called
        in mode direct (the access lasts until pimbot revokes it), nor for access PIM gave
        before pimbot granted it (``adopted``: its end is not pimbot's to move)."""
        recorded = MicrosoftRef.parse(ref)
        mode = recorded.mode if recorded is not None else self.mode
        if mode is not Mode.PIM or (recorded is not None and recorded.adopted):
            return None
        budget = self.budget()
        principal = await self.principal(target, ref, budget)
        await self.pim_extend(target, principal, budget)
        log.info("%s: PIM end of %s for %s moved to %s", self.name, target.role, target.email,
                 iso_or_none(target.expires_at))
        kept = recorded if recorded is not None else MicrosoftRef(principal, Mode.PIM)
        return replace(kept, expires=iso_or_none(target.expires_at)).encode()

    def __init__(self, name: str, settings: MicrosoftSettings, clock: Clock, *,
                 http: aiohttp.ClientSession | None = None, sleep: Sleep = asyncio.sleep
                 ) -> None:
        self.name = name
        self.settings = settings
        self.mode = settings.mode
        self._clock = clock
        self._http = http
        self._owns_http = http is None
        self._sleep = sleep
        self.tokens = TokenSource(f"{self.kind} {name}", settings.credential)
        self.graph = self.api(Service("Microsoft Graph", settings.graph_url))
        self.people = People(self.graph, clock)

    def api(self, service: Service) -> Api:
        return Api(f"{self.kind} {self.name}", service, self.tokens, self.session,
                   sleep=self._sleep)

    def session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        return self._http

    def budget(self) -> Budget:
        return Budget(self.settings.timeout)

    async def principal(self, target: GrantTarget, ref: str | None,
                        budget: Budget) -> str:
        """The object id a grant recorded, else the person's, looked up now."""
        recorded = MicrosoftRef.parse(ref)
        if recorded is not None and recorded.principal:
            return recorded.principal
        return (await self.people.find(target.email, budget)).id

    async def person(self, target: GrantTarget, budget: Budget) -> Person:
        return await self.people.find(target.email, budget)

    def holder_key(self, target: GrantTarget, ref: str | None) -> str | None:
        recorded = MicrosoftRef.parse(ref)
        return recorded.principal if recorded is not None else None

    def now(self) -> datetime:
        return self._clock.now()

    def schedule(self, target: GrantTarget, *, pascal: bool = False) -> dict[str, object]:
        """PIM's scheduleInfo: the activation's start and its end (Graph spells the types in
        camelCase, ARM in PascalCase)."""
        start = iso_utc(target.starts_at or self.now())
        if target.expires_at is None:
            expiration: dict[str, object] = {"type": "NoExpiration" if pascal
                                             else "noExpiration"}
        else:
            expiration = {"type": "AfterDateTime" if pascal else "afterDateTime",
                          "endDateTime": iso_utc(target.expires_at)}
        return {"startDateTime": start, "expiration": expiration}

    def justification(self, target: GrantTarget) -> str:
        return f"pimbot activation {target.activation_id} of {target.role} for {target.email}"

    async def close(self) -> None:
        await self.tokens.close()
        if self._owns_http and self._http is not None:
            await self._http.close()
        self._http = None
