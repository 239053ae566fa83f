"""What a provider that can list who holds a grant offers beyond the ``Provider`` port.

Listing is optional: a provider that cannot list (a webhook, a command) simply lacks these
methods, and drift detection falls back to asking ``check`` about the people pimbot knows.
Listing finds what ``check`` never can: holders pimbot has never heard of (a member added by
hand, a service principal), which ``drift: revoke`` then removes unless ``allow:`` names them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pimbot.ports import GrantTarget


class HolderKind(StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "servicePrincipal"
    GROUP = "group"
    LOGIN = "login"  # a database login
    OTHER = "other"


@dataclass(frozen=True)
class Holder:
    """Someone who holds a role's grant at the provider right now."""

    key: str  # the provider's id of the holder: an Entra object id, a database login
    name: str  # what people read in an alert: a UPN, a login, a display name
    kind: HolderKind
    emails: frozenset[str] = frozenset()  # the addresses pimbot may know them by (lower case)
    ref: str = ""  # what ``remove_holder`` needs besides the key (an assignment's id or name)

    def known_as(self) -> frozenset[str]:
        """Every name ``allow:`` may use for this holder (lower case)."""
        return frozenset({self.key.lower(), self.name.lower(), *self.emails})


@runtime_checkable
class HolderListing(Protocol):
    async def holders(self, grant: Mapping[str, Any]) -> list[Holder]:
        """Everyone holding what these grant parameters give, as the provider sees it now."""
        ...

    def holder_key(self, target: GrantTarget, ref: str | None) -> str | None:
        """Which holder a grant pimbot made is (its key), from the grant's record; None when
        the record does not say (the grant's email is then matched against ``emails``)."""
        ...

    async def remove_holder(self, grant: Mapping[str, Any], holder: Holder) -> None:
        """Take the grant away from a holder pimbot did not grant (``drift: revoke``)."""
        ...


def lists_holders(provider: object) -> bool:
    return isinstance(provider, HolderListing)


class ProbeOutcome(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ProbeFinding:
    """One line of ``pimbot providers check``."""

    outcome: ProbeOutcome
    what: str  # e.g. "token for Microsoft Graph", "group 1234… exists"
    detail: str = ""


@runtime_checkable
class Probing(Protocol):
    async def probe(self, grants: Sequence[Mapping[str, Any]]) -> list[ProbeFinding]:
        """Test credentials and permissions against the live service, granting nothing.
        ``grants`` are the grant parameters of the roles bound to this provider."""
        ...


@dataclass(frozen=True)
class ProbeReport:
    provider: str
    type: str
    findings: list[ProbeFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.outcome is not ProbeOutcome.PROBLEM for f in self.findings)
