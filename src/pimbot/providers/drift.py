"""Each provider's drift settings: ``drift: off|alert|revoke``, ``reconcile_every``, ``allow``.

The drift job (``pimbot.workflow.jobs.drift``) reads them through ``drift_settings`` so the
defaults live in one place: providers that can list their holders (postgres and the Microsoft
ones) are watched by default (``alert``); the others are not (``off``). ``ignore`` is the
older spelling of ``off``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pimbot.domain.model import ProviderConfig
from pimbot.providers.errors import ProviderConfigError
from pimbot.providers.settings import SettingsReader

DEFAULT_RECONCILE_EVERY = timedelta(minutes=15)
MIN_RECONCILE_EVERY = timedelta(minutes=1)
# Types whose providers implement ``HolderListing`` (``drift: revoke`` needs it).
LISTING_TYPES = frozenset({"postgres", "entra-group", "entra-role", "azure-rbac"})


class DriftMode(StrEnum):
    OFF = "off"
    ALERT = "alert"  # report holders pimbot did not grant, and grants gone missing
    REVOKE = "revoke"  # report them, and remove holders pimbot did not grant


DRIFT_CHOICES = (*DriftMode, "ignore")


@dataclass(frozen=True)
class DriftSettings:
    mode: DriftMode
    every: timedelta
    allow: frozenset[str]  # holders never touched (lower case): break-glass accounts, apps

    def allows(self, names: Iterable[str]) -> bool:
        return any(name.lower() in self.allow for name in names)


def drift_mode(value: object, provider_type: str) -> DriftMode:
    if value is None:
        return DriftMode.ALERT if provider_type in LISTING_TYPES else DriftMode.OFF
    text = str(value).strip().lower()
    return DriftMode.OFF if text == "ignore" else DriftMode(text)


def drift_settings(config: ProviderConfig) -> DriftSettings:
    """Read from settings the registry has validated (an invalid value is a programming
    error here: ``policy validate`` and ``build_providers`` refuse it first)."""
    every = config.settings.get("reconcile_every")
    allow = config.settings.get("allow") or []
    return DriftSettings(
        mode=drift_mode(config.settings.get("drift"), config.type),
        every=timedelta(seconds=float(every)) if every is not None else DEFAULT_RECONCILE_EVERY,
        allow=frozenset(str(a).strip().lower() for a in allow),
    )


def read_drift(s: SettingsReader, provider_type: str) -> DriftSettings:
    """Check a provider's ``drift``, ``reconcile_every`` and ``allow`` (errors name the key)."""
    value = s.choice("drift", DRIFT_CHOICES, "off" if provider_type not in LISTING_TYPES
                     else "alert")
    mode = drift_mode(value, provider_type)
    if mode is DriftMode.REVOKE and provider_type not in LISTING_TYPES:
        raise ProviderConfigError(
            s.path("drift"), f"revoke needs a provider that can list who holds a grant "
            f"({', '.join(sorted(LISTING_TYPES))}); a {provider_type} provider cannot",
            "drift: alert")
    every = s.positive_seconds("reconcile_every", DEFAULT_RECONCILE_EVERY.total_seconds(),
                               maximum=float("inf"))
    if every < MIN_RECONCILE_EVERY.total_seconds():
        raise ProviderConfigError(s.path("reconcile_every"),
                                  f"must be at least {MIN_RECONCILE_EVERY.seconds // 60}m",
                                  "reconcile_every: 15m")
    allow = s.str_list("allow")
    return DriftSettings(mode, timedelta(seconds=every), frozenset(a.lower() for a in allow))
