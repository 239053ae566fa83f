"""People in Entra ID: an email is looked up as a user principal name, else as ``mail``,
and the answer is cached for a while (a lookup per grant would be throttled on busy days).
Also the other direction, for drift alerts: object ids to names (``getByIds``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from cachetools import LRUCache

from pimbot.ports import Clock
from pimbot.providers.errors import ProviderError
from pimbot.providers.holders import Holder, HolderKind
from pimbot.providers.microsoft.api import Api, Budget

PEOPLE_TTL = timedelta(minutes=10)
KEPT_PEOPLE = 10_000
USER_READ = "User.Read.All"
_SELECT = "id,userPrincipalName,mail,displayName"
_KINDS = {"#microsoft.graph.user": HolderKind.USER,
          "#microsoft.graph.servicePrincipal": HolderKind.SERVICE_PRINCIPAL,
          "#microsoft.graph.group": HolderKind.GROUP}


@dataclass(frozen=True)
class Person:
    id: str  # the user's object id
    upn: str
    mail: str


def holder_of(item: dict[str, object], ref: str = "") -> Holder:
    """A Graph directory object (a member, an expanded principal) as a holder."""
    kind = _KINDS.get(str(item.get("@odata.type", "")), HolderKind.OTHER)
    upn, mail = str(item.get("userPrincipalName") or ""), str(item.get("mail") or "")
    name = upn or str(item.get("displayName") or "") or str(item.get("id", ""))
    emails = frozenset(e.lower() for e in (upn, mail) if e)
    return Holder(str(item.get("id", "")), name, kind, emails, ref)


class People:
    def __init__(self, graph: Api, clock: Clock, ttl: timedelta = PEOPLE_TTL) -> None:
        self._graph = graph
        self._clock = clock
        self._ttl = ttl
        # bounded: the most recently looked-up people only, whatever the tenant's size
        self._cache: LRUCache[str, tuple[Person, datetime]] = LRUCache(maxsize=KEPT_PEOPLE)

    async def find(self, email: str, budget: Budget) -> Person:
        key = email.strip().lower()
        cached = self._cache.get(key)
        now = self._clock.now()
        if cached is not None and cached[1] > now:
            return cached[0]
        person = await self._by_upn(key, budget) or await self._by_mail(key, budget)
        self._cache[key] = (person, now + self._ttl)
        return person

    def forget(self, email: str) -> None:
        self._cache.pop(email.strip().lower(), None)

    async def _by_upn(self, email: str, budget: Budget) -> Person | None:
        answer = await self._graph.call("GET", f"/v1.0/users/{quote(email, safe='@')}", budget,
                                        params={"$select": _SELECT})
        if answer.status == 404 or answer.status == 400:
            return None  # no such UPN (400: not a valid key, e.g. no @)
        if not answer.ok:
            raise self._graph.failure(answer, f"look up {email}", permission=USER_READ)
        return _person(answer.body)

    async def _by_mail(self, email: str, budget: Budget) -> Person:
        literal = email.replace("'", "''")
        found = [item async for item in self._graph.pages(
            "/v1.0/users", budget, params={"$filter": f"mail eq '{literal}'",
                                           "$select": _SELECT})]
        if not found:
            raise ProviderError(
                f"{self._graph.provider}: no Entra ID user has the user principal name or "
                f"mail {email}", retryable=False,
                public=f"{email} is not a user in Microsoft Entra ID")
        if len(found) > 1:
            raise ProviderError(
                f"{self._graph.provider}: {len(found)} Entra ID users have the mail {email}; "
                "refusing to guess", retryable=False,
                public=f"{email} matches several users in Microsoft Entra ID")
        return _person(found[0])

    async def describe(self, ids: Iterable[str], budget: Budget) -> dict[str, Holder]:
        """Names of directory objects by id (missing ones are left out)."""
        wanted = sorted(set(ids))
        found: dict[str, Holder] = {}
        for start in range(0, len(wanted), 1000):  # getByIds takes up to 1000 ids
            answer = await self._graph.call(
                "POST", "/v1.0/directoryObjects/getByIds", budget,
                body={"ids": wanted[start:start + 1000],
                      "types": ["user", "servicePrincipal", "group"]})
            if not answer.ok:
                raise self._graph.failure(answer, "name directory objects",
                                          permission="Directory.Read.All")
            for item in (answer.body or {}).get("value") or []:
                holder = holder_of(item)
                found[holder.key] = holder
        return found


def _person(body: object) -> Person:
    item = body if isinstance(body, dict) else {}
    return Person(str(item.get("id", "")), str(item.get("userPrincipalName") or ""),
                  str(item.get("mail") or ""))
