"""Reading a chat route's request body without letting a stranger hold memory or a socket.

The Slack route can only check a request's signature on its whole body, and the Teams route
in dev mode checks nothing, so their bodies are read before anyone is known. ``BodyReader``
reads a body under three bounds:

- a size (``MAX_BODY_BYTES``, aiohttp's own default): a larger ``Content-Length`` is refused
  with 413 before a byte is read, a chunked body is refused once it passes it;
- a deadline (``READ_DEADLINE_S`` for the whole body): a client that stops sending is
  answered 408 and the connection is closed;
- a budget of unauthenticated body bytes held in memory, process-wide
  (``UNAUTHENTICATED_BUDGET_BYTES``, shared by every route that asks for it), charged as the
  bytes *arrive*: a request whose declared length does not fit beside what is held is
  refused with 503 and ``Retry-After`` before it is buffered, one whose next chunk does not
  fit is refused then, and what it took is given back when the read ends, however it ends.
  A declared length is not charged before its bytes come: a stranger declaring 1 MB on many
  connections and sending 2 bytes on each holds 2 bytes of the budget each, not 1 MB (with a
  charge by declared length, 17 such connections had every Slack request refused 503).

A client that drops the connection mid-body, or sends a body its ``Content-Encoding`` does
not decode, is one WARNING line (``RefusalLog``) and a 400, never a traceback. Every
refusal closes the connection (``Connection: close``); a route that sends it with
``answered_and_closed`` does so without reading the rest of the body.

This module imports aiohttp and the standard library only, so the adapters can share it
without importing the rest of the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024**2
READ_DEADLINE_S = 10.0
UNAUTHENTICATED_BUDGET_BYTES = 16 * 1024**2
BUSY_RETRY_AFTER_S = 5
REFUSALS_LOGGED_EVERY_S = 60.0


class RefusalLog:
    """One WARNING line per ``every_s`` for a kind of refusal, with how many were not logged
    in between: a flood of refused requests cannot drown the log."""

    def __init__(self, logger: logging.Logger, every_s: float = REFUSALS_LOGGED_EVERY_S,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._every_s = every_s
        self._timer = timer
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def refused(self, kind: str, detail: str = "") -> None:
        now = self._timer()
        last = self._last.get(kind)
        if last is not None and now - last < self._every_s:
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            return
        self._last[kind] = now
        more = self._unlogged.pop(kind, 0)
        since = ""
        if last is not None and more:
            since = f" (and {more} more in the last {now - last:.0f} s)"
        self._log.warning("%s%s%s", kind, f": {detail}" if detail else "", since)


class BodyBudget:
    """Bytes of unauthenticated bodies held while they are read, across the process, within
    a limit."""

    def __init__(self, limit_bytes: int = UNAUTHENTICATED_BUDGET_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self.in_flight = 0

    def fits(self, size: int) -> bool:
        """Whether ``size`` more bytes would fit now (nothing is taken)."""
        return self.in_flight + size <= self.limit_bytes

    def take(self, size: int) -> bool:
        if self.in_flight + size > self.limit_bytes:
            return False
        self.in_flight += size
        return True

    def give_back(self, size: int) -> None:
        self.in_flight -= size


@cache
def process_budget() -> BodyBudget:
    """The one budget every route of this process shares (made on first use)."""
    return BodyBudget()


@dataclass(frozen=True)
class Body:
    """A body read whole (``data``), or the response that refused it (``refusal``)."""

    data: bytes = b""
    refusal: web.Response | None = None


class BodyReader:
    """Reads request bodies within a size, a deadline and (when asked) the budget."""

    def __init__(self, budget: BodyBudget | None = None, *, deadline_s: float = READ_DEADLINE_S,
                 max_bytes: int = MAX_BODY_BYTES, refusals: RefusalLog | None = None) -> None:
        self.budget = budget if budget is not None else process_budget()
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.refusals = refusals or RefusalLog(log)

    async def read(self, request: web.Request, *, authenticated: bool = False) -> Body:
        """The whole body, or a refusal (413, 408, 503, or 400 for a client that left).
        ``authenticated``: the sender is already known, so the budget does not apply."""
        declared = request.content_length
        if declared is not None and declared > self.max_bytes:
            return self._refuse(413, f"the body is over {self.max_bytes} bytes")
        budget = None if authenticated else self.budget
        if budget is not None and declared is not None and not budget.fits(declared):
            return self._busy()  # nothing read, nothing buffered
        return await self._read_within(request, budget)

    async def _read_within(self, request: web.Request, budget: BodyBudget | None) -> Body:
        """Read chunk by chunk, each chunk taking its bytes of the budget as it arrives;
        what was taken is given back at the end."""
        taken = 0
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.deadline_s):
                while chunk := await request.content.read(64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        return self._refuse(413, f"the body is over {self.max_bytes} bytes")
                    if budget is not None:
                        if not budget.take(len(chunk)):
                            return self._busy()
                        taken += len(chunk)
                    chunks.append(chunk)
        except TimeoutError:
            return self._refuse(408, f"the body did not arrive within {self.deadline_s:g} s")
        except (ConnectionError, HttpProcessingError) as exc:
            self.refusals.refused("a client left before sending its whole body",
                                  type(exc).__name__)
            return Body(refusal=_closing(web.json_response(
                {"error": "the body was not sent whole"}, status=400)))
        except web.RequestPayloadError:  # e.g. ``Content-Encoding: gzip`` over plain bytes
            self.refusals.refused("request refused (400)",
                                  "the body could not be decoded (its Content-Encoding)")
            return Body(refusal=_closing(web.json_response(
                {"error": "the body could not be decoded"}, status=400)))
        finally:
            if budget is not None:
                budget.give_back(taken)
        return Body(data=b"".join(chunks))

    def _busy(self) -> Body:
        self.refusals.refused("request refused (503): unauthenticated bodies in flight are "
                              "at their limit")
        response = web.json_response(
            {"error": "pimbot is reading too many requests at once; try again shortly"},
            status=503, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
        return Body(refusal=_closing(response))

    def _refuse(self, status: int, reason: str) -> Body:
        self.refusals.refused(f"request refused ({status})", reason)
        return Body(refusal=_closing(web.json_response({"error": reason}, status=status)))


def _closing(response: web.Response) -> web.Response:
    response.force_close()
    return response


async def answered_and_closed(request: web.Request, response: web.Response
                              ) -> web.StreamResponse:
    """Send a refusal, then close the connection: whatever is left of the body is never read
    (aiohttp would read and discard it for up to 10 s, its "lingering", holding a buffer
    for each refused connection)."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:  # the client has gone: nobody to answer (aiohttp ignores it too)
        pass
    request.protocol.force_close()  # after the answer is written: the transport flushes it
    return response
