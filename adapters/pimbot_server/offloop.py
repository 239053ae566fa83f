"""Blocking start-up work (imports, reading and validating the policy) off the event loop.

``pimbot run`` answers ``/healthz`` while it imports SQLAlchemy and the core and reads a
policy of thousands of assignments; those steps are synchronous and CPU-bound, so they run in
a thread of their own and the loop keeps serving (the interpreter hands the GIL to the loop's
thread every few milliseconds). The thread is a daemon: a SIGTERM during the start returns at
once, even while the thread is still blocked (a policy file that is a FIFO nobody writes yet);
``asyncio.to_thread`` would make the interpreter's exit wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(work: Callable[[], T], name: str = "pimbot-start") -> T:
    """``work()`` in a daemon thread; its result (or its exception) here. Cancelling the
    await leaves the thread to finish (or to die with the process)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(outcome: list[T], error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(outcome[0])

    def run() -> None:
        outcome: list[T] = []
        error: BaseException | None = None
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the awaiting task, raised there
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done
