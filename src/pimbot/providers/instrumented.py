"""A provider that reports each call's duration and failure to the Telemetry port."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pimbot.ports import Extending, GrantTarget, Provider, Telemetry

T = TypeVar("T")


class InstrumentedProvider:
    """Wraps ``inner`` (named ``name`` in the policy); behaves exactly like it."""

    def __init__(self, name: str, inner: Provider, telemetry: Telemetry) -> None:
        self.name = name
        self.inner = inner
        self.telemetry = telemetry

    def __getattr__(self, name: str) -> Any:
        """The inner provider's optional capabilities (``HolderListing``, ``Probing``) pass
        through, so the isinstance checks that look for them (drift) see them as they are."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def _timed(self, action: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        ok = False
        try:
            result = await call()
            ok = True
            return result
        finally:
            self.telemetry.provider_called(self.name, action, time.monotonic() - started, ok)

    async def grant(self, target: GrantTarget) -> str | None:
        return await self._timed("grant", lambda: self.inner.grant(target))

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        await self._timed("revoke", lambda: self.inner.revoke(target, ref))

    async def check(self, target: GrantTarget) -> bool:
        return await self._timed("check", lambda: self.inner.check(target))

    async def close(self) -> None:
        await self.inner.close()


class InstrumentedExtendingProvider(InstrumentedProvider):
    """The same, for a provider that is ``Extending`` (so the wrapper is one too)."""

    def __init__(self, name: str, inner: Provider, telemetry: Telemetry) -> None:
        super().__init__(name, inner, telemetry)
        assert isinstance(inner, Extending)
        self.extending = inner

    async def extend(self, target: GrantTarget, ref: str | None) -> str | None:
        return await self._timed("extend", lambda: self.extending.extend(target, ref))


def instrumented(providers: Mapping[str, Provider], telemetry: Telemetry) -> dict[str, Provider]:
    return {name: (InstrumentedExtendingProvider if isinstance(provider, Extending)
                   else InstrumentedProvider)(name, provider, telemetry)
            for name, provider in providers.items()}
