"""Typed reading of one provider's settings, with errors that name ``providers.NAME.KEY``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pimbot.domain.model import ProviderConfig
from pimbot.providers.errors import ProviderConfigError

# A provider call must end well within the lease pimbot holds while it runs (90 s), so a slow
# provider can never let a second worker call it for the same grant.
MAX_PROVIDER_TIMEOUT = 30.0


class SettingsReader:
    """Reads a provider's YAML mapping (minus ``type``); unknown keys are refused up front."""

    def __init__(self, config: ProviderConfig, allowed: Iterable[str]) -> None:
        self.name = config.name
        self._settings: dict[str, Any] = dict(config.settings)
        allowed_keys = sorted(allowed)
        for key in self._settings:
            if key not in allowed_keys:
                known = ", ".join(allowed_keys) or "none"
                raise ProviderConfigError(
                    self.path(key),
                    f"unknown setting for a {config.type} provider",
                    f"known settings: {known}",
                )

    def path(self, key: str) -> str:
        return f"providers.{self.name}.{key}"

    def has(self, key: str) -> bool:
        return self._settings.get(key) is not None

    def required_str(self, key: str, example: str) -> str:
        value = self._settings.get(key)
        if value is None:
            raise ProviderConfigError(self.path(key), "missing setting", f"{key}: {example}")
        return self._as_str(key, value, example)

    def optional_str(self, key: str, default: str, example: str) -> str:
        value = self._settings.get(key)
        return default if value is None else self._as_str(key, value, example)

    def positive_seconds(self, key: str, default: float,
                         maximum: float = MAX_PROVIDER_TIMEOUT) -> float:
        value = self._settings.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ProviderConfigError(
                self.path(key), f"must be a positive number of seconds, not {value!r}", f"{key}: 10"
            )
        if value > maximum:
            raise ProviderConfigError(
                self.path(key), f"must be at most {maximum:g} seconds, not {value!r} (a provider "
                "call must end well within the lease pimbot holds while it runs)", f"{key}: 10"
            )
        return float(value)

    def choice(self, key: str, choices: Iterable[str], default: str) -> str:
        options = list(choices)
        value = self._settings.get(key, default)
        if value not in options:
            raise ProviderConfigError(
                self.path(key), f"must be one of {', '.join(options)}, not {value!r}"
            )
        return str(value)

    def flag(self, key: str) -> bool:
        value = self._settings.get(key, False)
        if not isinstance(value, bool):
            raise ProviderConfigError(self.path(key), f"must be true or false, not {value!r}")
        return value

    def argv(self, key: str) -> tuple[str, ...]:
        example = f'{key}: ["/usr/local/bin/pim-{key}"]'
        value = self._settings.get(key)
        if value is None:
            raise ProviderConfigError(self.path(key), "missing setting", example)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(part, str) and part for part in value)
        ):
            raise ProviderConfigError(
                self.path(key),
                "must be a non-empty list of strings (a command and its arguments)",
                example,
            )
        return tuple(value)

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self._settings.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ProviderConfigError(self.path(key), "must be a list of names", f"{key}: [NAME]")
        return tuple(value)

    def str_mapping(self, key: str, example: str) -> dict[str, str]:
        """A mapping of non-empty texts to non-empty texts; keys are lower-cased."""
        value = self._settings.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
            for k, v in value.items()
        ):
            raise ProviderConfigError(self.path(key), "must be a mapping of names", example)
        return {k.strip().lower(): v.strip() for k, v in value.items()}

    def _as_str(self, key: str, value: Any, example: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ProviderConfigError(
                self.path(key), f"must be a non-empty string, not {value!r}", f"{key}: {example}"
            )
        return value
