"""The one aiohttp app: /healthz, /readyz, /metrics, plus every mounted adapter's routes.

``/metrics`` is open unless a token is configured (``PIMBOT_METRICS_TOKEN``); then it needs
``Authorization: Bearer TOKEN``, compared in constant time, and answers 401 otherwise. The
token is never logged.

The app is built once the core is composed and is then served behind the port
``pimbot_server.listener`` bound at the start. While the process starts
(``pimbot_server.startup``) it answers ``/healthz`` at once, ``/readyz`` 503 naming the phase;
a request on any other route waits a moment for the policy to be applied, else answers 503
with ``Retry-After``.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from pimbot.domain.ids import new_id
from pimbot.logcontext import bound
from pimbot.ports import Clock
from pimbot.store.database import Database
from pimbot_server.bodies import process_budget
from pimbot_server.metrics import CONTENT_TYPE, Metrics
from pimbot_server.mounting import MountedAdapter
from pimbot_server.startup import HOLD_SECONDS, RETRY_AFTER_SECONDS, Phase, StartupProgress

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS_KEY = web.AppKey("pimbot_metrics", Metrics)
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
ALWAYS_SERVED = frozenset({"/healthz", "/readyz"})


class ServedCore(Protocol):
    """What the HTTP routes need of ``PimCore``."""

    db: Database
    clock: Clock

    def is_ready(self) -> bool: ...


def build_http_app(core: ServedCore, adapters: Sequence[MountedAdapter] = (), *,
                   metrics_token: str | None = None,
                   metrics: Metrics | None = None,
                   startup: StartupProgress | None = None) -> web.Application:
    """The aiohttp application with health, readiness and metrics routes and the adapters'.

    ``startup`` is the progress of a start still under way (None: the core is prepared)."""
    metrics = metrics or Metrics(core.db, core.clock)
    middlewares = [_count_requests(metrics)]
    if startup is not None:
        middlewares.append(_until_applied(startup))
    app = web.Application(middlewares=middlewares)
    app[METRICS_KEY] = metrics

    async def healthz(_request: web.Request) -> web.Response:
        """Alive: 200 while the process starts and runs; 503 once a start failed (the
        process is exiting with its error on stderr)."""
        if startup is not None and startup.phase is Phase.FAILED:
            return web.Response(status=503, text="start-up failed\n")
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        """Ready when the policy has been applied, the database answers and the scheduler
        loop is alive; the text names what is missing."""
        if startup is not None and not startup.policy_applied:
            return web.Response(status=503, text=f"not ready: {startup.reason}\n")
        if not await core.db.ping():
            return web.Response(status=503, text="not ready: database unreachable\n")
        if startup is not None and startup.phase is not Phase.RUNNING:
            return web.Response(status=503, text=f"not ready: {startup.reason}\n")
        if not core.is_ready():
            return web.Response(status=503, text="not ready: scheduler loop not running\n")
        return web.Response(text="ready: database reachable, scheduler running, "
                                 "policy applied\n")

    async def metrics_route(request: web.Request) -> web.Response:
        if metrics_token and not bearer_matches(request, metrics_token):
            return web.Response(status=401, text="unauthorized\n",
                                headers={"WWW-Authenticate": 'Bearer realm="pimbot-metrics"'})
        body = await metrics.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    metrics.watch_body_budget(lambda: process_budget().in_flight)
    for adapter in adapters:
        adapter.mount(app)
    return app


def bearer_matches(request: web.Request, token: str) -> bool:
    """``Authorization: Bearer TOKEN`` carries ``token`` (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def request_id_of(request: web.Request) -> str:
    """The caller's ``X-Request-Id`` when it is a plain token, else a new id."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if REQUEST_ID.fullmatch(given) else new_id("h")


def _count_requests(metrics: Metrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        with bound(request_id=request_id_of(request)):
            return await _counted(request, handler)

    async def _counted(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route_label(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            metrics.http_requests.labels(request.method, route, str(exc.status)).inc()
            raise
        except Exception:
            metrics.http_requests.labels(request.method, route, "500").inc()
            raise
        metrics.http_requests.labels(request.method, route, str(response.status)).inc()
        return response

    return middleware


def _until_applied(startup: StartupProgress) -> Middleware:
    """Every route but health and readiness waits for the policy: a moment, then 503 with
    Retry-After."""
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ALWAYS_SERVED or await startup.applied_within(HOLD_SECONDS):
            return await handler(request)
        return web.Response(status=503, text=f"pimbot is starting: {startup.reason}\n",
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    return middleware


def _route_label(request: web.Request) -> str:
    """The route's pattern, never the raw path (unbounded label values)."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical
