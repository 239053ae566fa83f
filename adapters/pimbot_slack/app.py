"""``SlackAdapter``: slack-bolt's AsyncApp wired to the core, over HTTP and/or Socket Mode.

HTTP: ``POST /slack/events`` takes slash commands, interactivity and events (Slack's single
request URL). bolt verifies every request's signature (missing headers, a bad signature or a
timestamp more than 5 minutes off → 401, and nothing reaches the core). Socket Mode runs when
``SLACK_APP_TOKEN`` is set.

Then every request, over HTTP or the socket, is taken once: its Slack-unique key
(``translate.Delivery``) is recorded in the database through the core before anything is
done, and marked finished when its listener returns. A replay of signed bytes within
Slack's window, or an Events API retry, is acked and does nothing (the core audits it),
unless the replica that recorded it died before finishing: then the retry is acted on, once.
Who may act is checked next, in ``SlackHandlers.actor``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from pimbot_server.bodies import BodyReader, answered_and_closed
from pimbot_slack.core_port import SlackCore
from pimbot_slack.directory import SlackDirectory, slack_error
from pimbot_slack.gateway import PLATFORM, SlackGateway, build_client
from pimbot_slack.handlers import SlackHandlers
from pimbot_slack.settings import SlackSettings
from pimbot_slack.translate import ACTION_PREFIX, delivery_of, is_slack_shaped
from pimbot_slack.workspace import WorkspaceSource, origin_of

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class RequestVerifier:
    """slack_sdk's signature check, with a timestamp that is not a number refused (its
    ``is_valid`` raises ValueError on one, which would surface as a 500)."""

    def __init__(self, signing_secret: str) -> None:
        # Socket Mode needs no signing secret; without one every HTTP request is refused.
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def is_valid(self, body: bytes, timestamp: str, signature: str) -> bool:
        if self._verifier is None or not signature:
            return False
        if not timestamp.isascii() or not timestamp.isdigit():
            return False
        return bool(self._verifier.is_valid(body, timestamp, signature))


def _header(request: web.Request, name: str) -> str:
    return request.headers.get(name, "")
RETRY_HEADER = "x-slack-retry-num"
RETRY_AFTER_S = 10  # Slack's Web API unreachable: when to ask again


class SlackAdapter:
    """Slack in pimbot: translate payloads to core calls, render the core's cards."""

    def __init__(self, settings: SlackSettings, core: SlackCore) -> None:
        self.settings = settings
        self.core = core
        telemetry = getattr(core, "telemetry", None)  # the core's Telemetry port, if any
        self.client = build_client(settings, None if telemetry is None else (
            lambda seconds: telemetry.outbound_waited(PLATFORM, seconds)))
        ttl = timedelta(seconds=settings.identity_ttl_s)
        self.directory = SlackDirectory(self.client, core.clock, ttl)
        self.gateway = SlackGateway(self.client, self.directory)
        self.workspace = WorkspaceSource(self.client, settings.team_id)
        self.handlers = SlackHandlers(core, self.gateway, self.workspace,
                                      settings.is_response_url)
        self.bolt = AsyncApp(
            name="pimbot",
            logger=_quiet_logger(),
            client=self.client,  # carries the bot token and PIMBOT_SLACK_API_URL
            signing_secret=settings.signing_secret,
            request_verification_enabled=True,
            process_before_response=False,
        )
        self.bolt.error(self._on_error)
        self.verifier = RequestVerifier(settings.signing_secret)
        self.bodies = BodyReader()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._socket: AsyncSocketModeHandler | None = None
        self._register()
        core.add_gateway(self.gateway)

    @classmethod
    def from_env(cls, env: Mapping[str, str], core: SlackCore) -> SlackAdapter:
        return cls(SlackSettings.from_env(env), core)

    def mount(self, app: web.Application) -> None:
        """Add ``POST /slack/events`` (HTTP mode; signatures always verified)."""
        app.router.add_post(EVENTS_PATH, self.handle_http)

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if not self.settings.signing_secret:
            # Without a signing secret nothing could be verified: refuse rather than trust.
            return web.json_response(
                {"error": "signature verification is not configured"}, status=401
            )
        # the signature covers the whole body: read it within a size, a deadline and the
        # process's budget for bodies nobody is known for yet (pimbot_server.bodies)
        body = await self.bodies.read(request)
        if body.refusal is not None:
            return await answered_and_closed(request, body.refusal)
        if not self.verifier.is_valid(body.data, _header(request, "X-Slack-Request-Timestamp"),
                                      _header(request, "X-Slack-Signature")):
            # Checked before anything parses the body: an unsigned request with a malformed
            # body or timestamp is refused like any other, never parsed into a 500.
            self.bodies.refusals.refused("Slack request refused (401)", "a bad signature")
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_request = bolt_request_of(request, body.data)
        if bolt_request is None:  # signed, but not a body Slack sends
            log.warning("a signed Slack request whose body is not a Slack payload (400)")
            return web.json_response(
                {"error": "malformed body: not a Slack payload (a form or a JSON object)"},
                status=400)
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def start(self) -> None:
        """Learn the served workspace (``auth.test``), then connect Socket Mode when an app
        token is configured. A token of another workspace than ``PIMBOT_SLACK_TEAM_ID``
        stops the start; Slack out of reach does not (the next request asks again)."""
        try:
            await self.workspace.learn()
        except SlackApiError as exc:
            log.warning("auth.test failed at start; asking again on the next request",
                        extra={"error": slack_error(exc)})
        except OSError as exc:
            log.warning("Slack unreachable at start; asking again on the next request",
                        extra={"error": type(exc).__name__})
        if not self.settings.socket_mode or self._socket is not None:
            return
        self._socket = AsyncSocketModeHandler(
            self.bolt, self.settings.app_token, web_client=self.client
        )
        await self._socket.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack Socket Mode connected")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Disconnect Socket Mode and give in-flight requests ``grace_s`` to finish."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        try:
            await asyncio.wait_for(self.idle(), timeout=grace_s)
        except TimeoutError:
            log.warning(
                "Slack requests still running at stop", extra={"count": len(self._inflight)}
            )

    async def idle(self) -> None:
        """Wait until every request already acked has finished its work."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _on_error(self, error: Exception, logger: logging.Logger) -> BoltResponse:
        """bolt's error handler, for a middleware or a listener that raised before the ack
        (bolt's own ``auth.test`` among them). Slack's Web API out of reach is Slack's
        problem to retry: 503 with ``Retry-After``, one warning line, nothing acted on (the
        request was not recorded, so the retry is a first delivery). Anything else is a 500
        with its traceback, as bolt would answer."""
        if slack_unavailable(error):
            log.warning("Slack's Web API is unreachable (%s); answered 503, Slack retries",
                        _short(error))
            return BoltResponse(status=503, body="",
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        log.error("a Slack request failed", exc_info=error)
        return BoltResponse(status=500, body="")

    def _register(self) -> None:
        prefix = re.compile("^" + re.escape(ACTION_PREFIX))
        self.bolt.use(self._once)
        self.bolt.command(re.compile(".*"))(self._tracked(self.handlers.on_command))
        # every button, so one pimbot does not know gets an answer rather than silence
        self.bolt.action(re.compile(".*"))(self._tracked(self.handlers.on_action))
        self.bolt.view_submission(prefix)(self._tracked(self.handlers.on_view_submission))
        self.bolt.event("app_home_opened")(self._tracked(self._on_home_opened))

    def _tracked(
        self, handler: Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]
    ) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
        async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            try:
                await handler(ack, body)
            except Exception:
                await self._finished(body)
                raise
            await self._finished(body)

        return listener

    async def _finished(self, body: dict[str, Any]) -> None:
        """An event's work is done (even if it failed): a retry of it is now a replay. A
        process killed before this point leaves it unfinished, and Slack's retry acts.
        (Commands and clicks, which Slack never retries, were recorded finished.)"""
        delivery = delivery_of(body)
        if delivery.key and delivery.retried_by_slack:
            await self.core.delivery_done(PLATFORM, delivery.key)

    async def _on_home_opened(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        event = body.get("event") or {}
        if event.get("tab", "home") != "home":
            return
        try:
            await self.handlers.on_home(str(event.get("user", "")), origin_of(body))
        except Exception:
            log.exception("publishing the App Home failed")

    async def _once(
        self, req: AsyncBoltRequest, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """A request already taken (a replay, or Slack's retry of an event) is acked, changes
        nothing, and is audited by the core. One that cannot be recorded (the database is
        out of reach) is answered 500 and not acted on: unchecked is never trusted."""
        delivery = delivery_of(body)
        # Slack gives every request pimbot handles an id; one without is keyed by its signed
        # bytes and timestamp, so the same bytes resent are a replay all the same.
        key = delivery.key or _bytes_key(req)
        if key:
            retry = (req.headers.get(RETRY_HEADER) or [""])[0]
            try:
                first = await self.core.first_delivery(
                    PLATFORM, key, delivery.kind, delivery.user_id,
                    retryable=delivery.retried_by_slack and bool(delivery.key),
                    **({"slack_retry": retry} if retry else {}),
                )
            except Exception:
                log.exception("could not record a Slack request; not acting on it")
                return BoltResponse(status=500, body="")
            if not first:
                return BoltResponse(status=200, body="")
        await next()
        return None


def _bytes_key(req: AsyncBoltRequest) -> str:
    """A delivery key for a request that carries no id of its own: its timestamp and body."""
    stamp = (req.headers.get("x-slack-request-timestamp") or [""])[0]
    digest = hashlib.sha256(f"{stamp}\n{req.raw_body}".encode()).hexdigest()
    return f"bytes:{digest[:40]}"


def bolt_request_of(request: web.Request, body: bytes) -> AsyncBoltRequest | None:
    """bolt's request for a signed body, or None when the body is not one Slack sends: not
    UTF-8, not a form or JSON whose payload is an object, or an object whose fields are not
    of Slack's types (bolt's parsing, or pimbot's, would raise AttributeError: a 500)."""
    try:
        text = body.decode("utf-8")
        payload = parse_body(text, request.content_type)
        if not isinstance(payload, dict) or not is_slack_shaped(payload):
            return None
        return AsyncBoltRequest(body=text, query=request.query_string,
                                headers=dict(request.headers))
    except (ValueError, AttributeError, TypeError, KeyError, IndexError, RecursionError):
        # RecursionError: JSON nested deeper than Python parses (``[[[…``, under the size cap)
        return None  # bolt reading the payload's fields (user, team, …) of the wrong type


def slack_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says Slack's Web API could not be reached or is itself down (a
    connection refused or cut, a timeout, an HTTP 5xx), rather than a fault of pimbot's."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 0) or 0
        return int(status) >= 500
    return isinstance(error, OSError | TimeoutError | aiohttp.ClientError)


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:160]}"


def _quiet_logger() -> logging.Logger:
    """bolt logs rejected request bodies at INFO; those hold response URLs, so keep WARNING."""
    logger = logging.getLogger("pimbot_slack.bolt")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger
