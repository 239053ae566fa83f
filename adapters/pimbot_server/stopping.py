"""SIGINT / SIGTERM during ``pimbot run``: an event that says stop, and work raced against it.

The handlers are installed before the listener binds, so a signal at any moment of the start
(while importing, while the policy is read, while another replica holds the start-up lock)
stops the process cleanly with exit 0 instead of killing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stopping: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stopping`` while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


async def unless_stopped(work: Coroutine[Any, Any, T],
                         stopping: asyncio.Event) -> asyncio.Task[T] | None:
    """Run ``work`` until it ends or ``stopping`` is set. The finished task (its ``result()``
    returns or raises what the work did), or None when the stop came first: the work is then
    cancelled (a policy transaction under way rolls back)."""
    task = asyncio.create_task(work)
    stop = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        stop.cancel()
    if task.done():
        return task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
