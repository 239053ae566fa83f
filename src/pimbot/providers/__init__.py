"""Where access is really granted: noop, webhook, postgres, command (entra, azure to come)."""

from pimbot.providers.errors import ProviderConfigError, ProviderError
from pimbot.providers.registry import (
    ProviderType,
    build_provider,
    build_providers,
    grant_parameter_problems,
    provider_config_errors,
)

__all__ = [
    "ProviderConfigError",
    "ProviderError",
    "ProviderType",
    "build_provider",
    "build_providers",
    "grant_parameter_problems",
    "provider_config_errors",
]
