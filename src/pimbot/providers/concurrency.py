"""How many calls pimbot makes to one provider at once: ``providers.NAME.max_concurrency``.

A burst of expiries revokes concurrently, up to this many calls in flight per provider (the
rest wait their turn under their grant's lease), so a provider is never flooded and a slow
one does not hold the others back. Every provider type takes the setting.
"""

from __future__ import annotations

from pimbot.domain.model import ProviderConfig
from pimbot.providers.errors import ProviderConfigError

KEY = "max_concurrency"
DEFAULT_MAX_CONCURRENCY = 64
LIMIT = 1000


def max_concurrency(config: ProviderConfig | None) -> int:
    """The provider's limit (the default when unset); ProviderConfigError names the path."""
    value = config.settings.get(KEY) if config is not None else None
    if value is None:
        return DEFAULT_MAX_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMIT:
        assert config is not None
        raise ProviderConfigError(
            f"providers.{config.name}.{KEY}",
            f"must be a whole number from 1 to {LIMIT}, not {value!r}",
            f"{KEY}: {DEFAULT_MAX_CONCURRENCY}",
        )
    return value
