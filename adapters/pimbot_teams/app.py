"""``TeamsAdapter``: ``POST /api/messages`` on pimbot's aiohttp server, wired to the core.

Every request is authenticated first (``auth.BotFrameworkAuth``: 401 without a valid Bot
Connector token, 403 for a token meant for another bot or another service URL, also 401
when the signing keys cannot be fetched). The token is checked from the headers before the
body is read; the body is then read within a size and a deadline
(``pimbot_server.bodies``), and the token matched to the activity's channel and service URL.
Refusals are logged at most once a minute per kind, with a count. Then its tenant is
checked (403 for a tenant not in ``MICROSOFT_APP_TENANT_ID``); only then is anything read or
changed. Invokes are
answered in the HTTP response (HTTP 200, body ``{statusCode, type, value}``); every other
activity is answered 201 at once and worked on in the background, its replies sent through
the Bot Connector.

Built on botbuilder's schema (``Activity``, ``ConversationReference``) and ``TurnContext``
helpers, not on ``CloudAdapter``, whose auth path blocks the event loop and answers 500 when
the signing keys are unreachable, and whose invoke responses 4.17.1 serialises twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from pimbot.domain.admission import Caller, Standing
from pimbot_server.bodies import BodyReader, answered_and_closed
from pimbot_teams.auth import AuthError, BotFrameworkAuth, OpenIdKeys
from pimbot_teams.connector import BotConnector
from pimbot_teams.core_port import TeamsCore
from pimbot_teams.directory import PLATFORM, TeamsPeople
from pimbot_teams.gateway import TeamsGateway
from pimbot_teams.handlers import TeamsHandlers
from pimbot_teams.settings import TeamsSettings
from pimbot_teams.store import TeamsStore
from pimbot_teams.translate import CHANNEL_ID, Inbound, read_activity

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/messages"
DEV_MODE_WARNING = (
    "PIMBOT_TEAMS_DEV_MODE=1 with no MICROSOFT_APP_ID: requests to /api/messages are NOT "
    "authenticated, so anyone who can reach this port can act as anyone and choose where "
    "replies go. Use this only with the Bot Framework Emulator or local tests."
)


class TeamsAdapter:
    """Teams in pimbot: authenticate, translate activities to core calls, render cards."""

    def __init__(self, settings: TeamsSettings, core: TeamsCore,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.core = core
        self.session = session or aiohttp.ClientSession()
        self._own_session = session is None
        keys = OpenIdKeys(settings.openid_metadata_url, self.session)
        self.auth = BotFrameworkAuth(settings.app_id, settings.token_issuer,
                                     keys if settings.authenticates else None)
        telemetry = getattr(core, "telemetry", None)  # the core's Telemetry port, if any
        replicas = getattr(core, "replicas", None)  # the core's live replicas, if any
        self.connector = BotConnector(settings, self.session, on_wait=None if telemetry is None
                                      else lambda s: telemetry.outbound_waited(PLATFORM, s),
                                      live=getattr(replicas, "live", None))
        self.store = TeamsStore(core.db, core.clock)
        self.people = TeamsPeople(core, self.connector,
                                  timedelta(seconds=settings.identity_ttl_s))
        self.gateway = TeamsGateway(core, self.connector, self.store, settings)
        self.handlers = TeamsHandlers(core, self.people, self.gateway, self.store)
        self._inflight: set[asyncio.Task[None]] = set()
        # dev mode reads bodies before (without) any authentication: the process's budget
        self.bodies = BodyReader()
        if not settings.authenticates:
            log.warning(DEV_MODE_WARNING)
        core.add_gateway(self.gateway)

    @classmethod
    def from_env(cls, env: Mapping[str, str], core: TeamsCore) -> TeamsAdapter:
        return cls(TeamsSettings.from_env(env), core)

    def mount(self, app: web.Application) -> None:
        app.router.add_post(MESSAGES_PATH, self.handle_http)

    async def start(self) -> None:
        """Nothing to connect: the Bot Connector calls in, and pimbot calls out per send."""

    async def stop(self, grace_s: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.idle(), timeout=grace_s)
        except TimeoutError:
            log.warning("Teams activities still running at stop (%d)", len(self._inflight))
        if self._own_session:
            await self.session.close()

    async def idle(self) -> None:
        """Wait until every activity already answered 201 has finished its work."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _refusal(415, "activities are JSON")
        try:  # the token is in the headers: checked before a byte of the body is read
            checked = await self.auth.token(request.headers.get("Authorization", ""))
        except AuthError as exc:
            return await answered_and_closed(request, self._refused(exc))
        body = await self.bodies.read(request, authenticated=self.settings.authenticates)
        if body.refusal is not None:
            return await answered_and_closed(request, body.refusal)
        try:
            inbound = read_activity(json.loads(body.data))
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError):  # deep nesting
            return _refusal(400, "not a Bot Framework activity")
        try:
            self.auth.admits(checked, inbound.channel_id, inbound.service_url)
        except AuthError as exc:
            return self._refused(exc)
        if self.settings.authenticates and inbound.channel_id != CHANNEL_ID:
            return _refusal(403, f"pimbot serves Microsoft Teams, not {inbound.channel_id!r}")
        if not self.settings.serves_tenant(inbound.tenant_id):
            log.warning("Teams request from a tenant pimbot does not serve refused")
            await self.core.admit(Caller(PLATFORM, inbound.user_id, Standing.OTHER_WORKSPACE,
                                         team=inbound.tenant_id), inbound.type)  # audited
            return _refusal(403, "this tenant is not served by this pimbot")
        if inbound.type == "invoke":
            status, answer = await self.handlers.on_invoke(inbound)
            return web.json_response(answer, status=status)
        if not await self._first_delivery(inbound):
            return web.Response(status=201)  # the Bot Connector's retry: done once already
        self._track(self._finishing(inbound, self.handlers.on_activity(inbound)))
        return web.Response(status=201)

    def _refused(self, exc: AuthError) -> web.Response:
        """An unauthenticated request's refusal: logged once a minute with a count."""
        self.bodies.refusals.refused(f"Teams request refused ({exc.status})", exc.reason)
        return _refusal(exc.status, exc.reason)

    async def _first_delivery(self, inbound: Inbound) -> bool:
        """The Bot Connector may deliver an activity twice (a slow answer): do it once, on
        any replica (the core's delivery ledger). Invokes are not deduplicated: a retried
        press must get an answer, and the core decides it once anyway."""
        key = _delivery_key(inbound)
        if not key:
            return True
        return await self.core.first_delivery(PLATFORM, key, inbound.type, inbound.user_id)

    async def _finishing(self, inbound: Inbound, work: Coroutine[Any, Any, None]) -> None:
        """Run an activity's work, then record it finished: a redelivery is then a replay
        (one the killed process never finished is acted on)."""
        key = _delivery_key(inbound)
        try:
            await work
        except Exception:
            if key:
                await self.core.delivery_done(PLATFORM, key)
            raise
        if key:
            await self.core.delivery_done(PLATFORM, key)

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)


def _delivery_key(inbound: Inbound) -> str:
    """What makes an activity unique to the Bot Connector ("" when it has no id)."""
    activity_id = str(inbound.activity.id or "")
    return f"{inbound.conversation_id}|{activity_id}" if activity_id else ""


def _refusal(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
