"""How platform adapters plug into the server: a small protocol, loaded lazily by name.

An adapter package ``pimbot_<name>`` exposes ``app.<Name>Adapter.from_env(env, core)``,
which returns an object with this shape. ``from_env`` registers the adapter's ChatGateway
with the core (``core.add_gateway``); ``mount`` adds its routes to the one aiohttp app.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pimbot_server.settings import AdapterName

if TYPE_CHECKING:  # the console alone mounts nothing and never imports aiohttp
    from aiohttp import web


class MountedAdapter(Protocol):
    def mount(self, app: web.Application) -> None:
        """Add the adapter's routes (``/slack/events``, ``/api/messages``)."""
        ...

    async def start(self) -> None:
        """Open outbound connections (e.g. Slack Socket Mode) once the core is running."""
        ...

    async def stop(self) -> None: ...


class AdapterUnavailable(Exception):
    """The adapter asked for is not installed or not implemented."""


_FACTORIES: dict[AdapterName, tuple[str, str]] = {
    AdapterName.SLACK: ("pimbot_slack.app", "SlackAdapter"),
    AdapterName.TEAMS: ("pimbot_teams.app", "TeamsAdapter"),
}


def import_adapter(name: AdapterName) -> None:
    """Import the adapter's package (slack_bolt, botbuilder: a second of CPU) ahead of
    ``load_adapter``, e.g. in a thread; a missing one is left for ``load_adapter`` to report."""
    with contextlib.suppress(ImportError):
        importlib.import_module(_FACTORIES[name][0])


def load_adapter(name: AdapterName, env: Mapping[str, str], core: Any) -> MountedAdapter:
    """Import ``pimbot_<name>`` only now and build its adapter from the environment."""
    module_name, class_name = _FACTORIES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith(f"pimbot_{name}"):
            raise AdapterUnavailable(
                f"the {name} adapter is not implemented in this build ({module_name} is "
                "missing); drop it from PIMBOT_ADAPTERS"
            ) from None
        raise AdapterUnavailable(
            f"the {name} adapter needs {exc.name}, which is not installed; "
            f"install pimbot[{name}] or drop {name} from PIMBOT_ADAPTERS"
        ) from None
    factory = getattr(module, class_name, None)
    if factory is None or not hasattr(factory, "from_env"):
        raise AdapterUnavailable(
            f"the {name} adapter is not implemented in this build "
            f"({module_name}.{class_name}.from_env is missing); drop it from PIMBOT_ADAPTERS"
        )
    adapter: MountedAdapter = factory.from_env(env, core)
    return adapter
