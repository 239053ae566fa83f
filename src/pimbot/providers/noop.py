"""The noop provider: grants nothing anywhere, remembers what it "granted" in memory."""

from __future__ import annotations

import logging

from pimbot.ports import GrantTarget

log = logging.getLogger(__name__)


class NoopProvider:
    """For trying pimbot out and for roles that only need an audited record of who held what."""

    def __init__(self, name: str = "noop") -> None:
        self.name = name
        self._held: set[tuple[str, str]] = set()

    async def grant(self, target: GrantTarget) -> str | None:
        self._held.add((target.email, target.role))
        log.info("noop: granted %s to %s", target.role, target.email)
        return None

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        self._held.discard((target.email, target.role))
        log.info("noop: revoked %s from %s", target.role, target.email)

    async def check(self, target: GrantTarget) -> bool:
        return (target.email, target.role) in self._held

    async def close(self) -> None:
        return None
