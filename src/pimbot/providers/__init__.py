"""Where access is really granted: noop, webhook, postgres, command, and in the Microsoft
cloud entra-group, entra-role and azure-rbac (``providers.microsoft``)."""

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
