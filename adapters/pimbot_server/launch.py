"""``pimbot run`` with an HTTP listener: the port first, then everything else.

This module imports aiohttp (through ``listener``) and the standard library only. It binds
the port and installs the signal handlers, then imports the rest of pimbot (SQLAlchemy, the
policy schema, the tables, the core: about a CPU-second) in a thread while the loop answers
``/healthz``, and hands the listener to ``pimbot_server.app.serve``, which reads the policy
(in a thread too), composes the core and puts it behind the same port.
"""

from __future__ import annotations

import asyncio
import importlib
import logging

from pimbot_server.listener import Listener
from pimbot_server.offloop import in_thread
from pimbot_server.settings import Settings
from pimbot_server.startup import Phase, StartupProgress
from pimbot_server.stopping import stop_on_signals, unless_stopped

log = logging.getLogger(__name__)

# What a run imports before it can compose: the sub-commands (SQLAlchemy), the composition
# root (the store, the policy schema, the core, the providers' registry) and the HTTP app.
HEAVY_MODULES = ("pimbot_server.commands", "pimbot_server.app", "pimbot_server.http")


def import_heavy_modules() -> None:
    for name in HEAVY_MODULES:
        importlib.import_module(name)


async def run_listening_first(settings: Settings) -> int:
    """Listen, import, then serve; exit 0 on SIGINT / SIGTERM at any moment of it."""
    stopping = asyncio.Event()
    listener = Listener(StartupProgress())
    with stop_on_signals(stopping):
        try:
            await listener.start(settings.host, settings.port)
            imported = await unless_stopped(in_thread(import_heavy_modules), stopping)
            if imported is None:
                log.info("stopping: signal received during start-up")
                return 0
            imported.result()
            from pimbot_server import commands

            return await commands.run_behind(listener, stopping, settings)
        except BaseException:
            if not listener.progress.policy_applied:
                listener.progress.enter(Phase.FAILED)
            raise
        finally:
            await listener.stop()
