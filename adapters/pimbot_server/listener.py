"""The port ``pimbot run`` binds first, before it imports or reads anything heavy.

``Listener`` imports aiohttp and the standard library only (never SQLAlchemy, the policy or
the core: ``tests/test_lazy_imports.py`` and an import-linter contract hold it to that), so it
answers within the interpreter's own start whatever the policy's size. Until the composed
application is put behind it (``serve``):

- ``/healthz`` answers 200 (the process is alive and starting), or 503 once the start failed
  (the process is about to exit with the policy's errors on stderr);
- ``/readyz`` answers 503 naming the phase (``not ready: policy not applied yet (starting)``);
- every other route (the Slack and Teams routes, ``/metrics``) waits for the policy up to
  ``HOLD_SECONDS``, then answers 503 with ``Retry-After``, as the composed app's own gate does
  (``pimbot_server.http``).

Once ``serve(app)`` is called, every request on the same port (no rebind, no second socket)
goes to that application, middlewares and all.

What the listener answers itself is counted in the composed app's HTTP request counter
(``pimbot_http_requests_total{method, route, status}``), so a start that turned Slack or
Teams away shows in the metrics: the listener tallies its answers until the metrics exist,
then ``count_into`` hands them over and each later answer is counted at once. A request it
held and then passed to the app is counted by the app, once. The route label is the
contract's route (DESIGN.md), any other path ``unmatched``, as the app labels them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pimbot_server.bodies import RefusalLog
from pimbot_server.startup import (
    HOLD_SECONDS,
    RETRY_AFTER_SECONDS,
    Phase,
    StartupProgress,
)

log = logging.getLogger(__name__)

LIVENESS = "/healthz"
READINESS = "/readyz"
# A connection idle this long is closed: between requests, and (aiohttp starts the same timer
# for a connection that has not sent its first request yet) one sending nothing, or its
# headers too slowly (aiohttp 3 has no header deadline of its own). aiohttp's default is
# an hour.
KEEPALIVE_S = 15.0
# The routes of the contract, the labels of requests the listener answers; any other path is
# counted as "unmatched" (the label values stay bounded, whatever paths are asked for).
ROUTES = frozenset({LIVENESS, READINESS, "/metrics", "/slack/events", "/api/messages"})
UNMATCHED = "unmatched"

# method, route, status, how many: ``Metrics.http_answered``
CountAnswered = Callable[[str, str, str, int], None]


class MalformedRequests(logging.Filter):
    """aiohttp answers a request it cannot parse (``Content-Length`` beside
    ``Transfer-Encoding``, a NUL in a header, a header past its limit, an encoding it cannot
    decode) with 400, and logs each as ERROR with a traceback: anyone could fill the log
    with them. Those become one WARNING line a minute with a count (``RefusalLog``);
    anything else the server logs (a handler that raised) is left as it is."""

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__()
        self._refusals = refusals

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        self._refusals.refused("a malformed HTTP request refused (400)",
                               f"{type(error).__name__}: {str(error.message)[:120]}")
        return False


def _server_logger() -> logging.Logger:
    """The logger aiohttp's protocol reports to (``aiohttp.server`` by default), filtered."""
    logger = logging.getLogger(__name__ + ".http")
    if not any(isinstance(f, MalformedRequests) for f in logger.filters):
        logger.addFilter(MalformedRequests(RefusalLog(log)))
    return logger


class Listener:
    """One aiohttp runner on HOST:PORT for the whole life of ``pimbot run``."""

    def __init__(self, progress: StartupProgress) -> None:
        self.progress = progress
        self.port = 0
        self._served: web.Application | None = None
        self._answered: Counter[tuple[str, str, str]] = Counter()  # until ``count_into``
        self._count: CountAnswered | None = None
        front = web.Application()
        # ``Expect: 100-continue`` is answered once, by the app that reads the body
        front.router.add_route("*", "/{path:.*}", self._dispatch, expect_handler=_not_here)
        self._runner: web.AppRunner | None = web.AppRunner(front, access_log=None,
                                                             keepalive_timeout=KEEPALIVE_S,
                                                             logger=_server_logger())

    async def start(self, host: str, port: int) -> None:
        assert self._runner is not None
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        log.info("HTTP listening on %s:%s", host, self.port)

    def count_into(self, count: CountAnswered) -> None:
        """Count what the listener answered so far, and from now on each answer, by
        ``count`` (the composed app's request counter)."""
        self._count = count
        answered, self._answered = self._answered, Counter()
        for (method, route, status), times in answered.items():
            count(method, route, status, times)

    async def serve(self, app: web.Application) -> None:
        """From now on every request goes to ``app`` (started and frozen here)."""
        app.freeze()
        await app.startup()
        self._served = app

    async def stop(self) -> None:
        """Stop taking requests and let those in flight finish (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        served, self._served = self._served, None
        if served is not None:
            await served.shutdown()
            await served.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        served = self._served
        if served is None:
            answer = await self._answer(request)
            if answer is not None:
                self._counted(request, answer.status)
                return answer
            served = self._served
            assert served is not None
        # aiohttp's own entry into an application (what its server calls for each request):
        # routing, middlewares and handlers exactly as if ``served`` owned the socket.
        return await served._handle(request)

    async def _answer(self, request: web.Request) -> web.Response | None:
        """The listener's own answer before the app is behind it (None: the app came in
        while the request was held, and answers it)."""
        if request.path == LIVENESS:
            return self._liveness()
        if request.path == READINESS:
            return web.Response(status=503, text=f"not ready: {self.progress.reason}\n")
        if not await self.progress.applied_within(HOLD_SECONDS) or self._served is None:
            return web.Response(
                status=503, text=f"pimbot is starting: {self.progress.reason}\n",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return None

    def _counted(self, request: web.Request, status: int) -> None:
        key = (request.method, request.path if request.path in ROUTES else UNMATCHED,
               str(status))
        if self._count is None:
            self._answered[key] += 1
        else:
            self._count(*key, 1)

    def _liveness(self) -> web.Response:
        if self.progress.phase is Phase.FAILED:
            return web.Response(status=503, text="start-up failed\n")
        return web.Response(text="ok\n")


async def _not_here(_request: web.Request) -> None:
    """The front's route leaves ``Expect`` to the composed app (else it is sent twice)."""
