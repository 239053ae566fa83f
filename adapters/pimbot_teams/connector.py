"""The Bot Connector REST API (v3) with pimbot's own token: send, reply, update, create a
conversation, look up a member.

Every call is paced per conversation (``limits.ConversationLimiter``) and retried on 429,
412, 502 and 504 with backoff and ``Retry-After``; a dropped connection is retried the same
way. Every wait on a limit (pimbot's own pacing, or a 429's ``Retry-After``) is reported
to ``on_wait`` (the core's ``Telemetry.outbound_waited``, so ``/metrics`` shows it). 403 and
404 mean the bot cannot post there (uninstalled, removed from the team, no such
conversation): ``ConversationGone``, which the gateway reports as Unreachable. Anything else
raises ``ConnectorError``, so the core's outbox job retries later.

The token comes from the Entra token endpoint (client credentials for the Bot Framework
scope) and is cached until five minutes before it expires. With no app id (dev mode) calls
carry no token, as the Bot Framework Emulator expects. Neither the token nor the secret is
ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from pimbot_teams.limits import (
    APP_WINDOWS,
    BASE_BACKOFF_S,
    MAX_ATTEMPTS,
    RETRYABLE_STATUSES,
    ConversationLimiter,
    backoff_delay,
)
from pimbot_teams.settings import TeamsSettings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
TOKEN_MARGIN_S = 300.0
GONE_STATUSES = frozenset({403, 404})
RATE_LIMITED = 429


class ConnectorError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Bot Connector answered {status}: {message}")
        self.status = status


class ConversationGone(ConnectorError):
    """The bot cannot post to this conversation (403 / 404)."""


class TokenSource:
    """pimbot's own Bot Connector token (client credentials), cached."""

    def __init__(self, settings: TeamsSettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._token = ""
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str | None:
        if not self._settings.app_id:
            return None
        async with self._lock:
            if self._token and time.monotonic() < self._until:
                return self._token
            form = {
                "grant_type": "client_credentials",
                "client_id": self._settings.app_id,
                "client_secret": self._settings.app_password,
                "scope": self._settings.oauth_scope,
            }
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            try:
                async with self._session.post(self._settings.token_url, data=form,
                                              timeout=timeout) as response:
                    body = await response.text()
                    if response.status != 200:
                        raise ConnectorError(response.status, "the token request was refused")
                    data = json.loads(body)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise ConnectorError(0, f"no token ({type(exc).__name__})") from None
            self._token = str(data["access_token"])
            lifetime = float(data.get("expires_in", 3600))
            self._until = time.monotonic() + max(lifetime - TOKEN_MARGIN_S, 30.0)
            return self._token


class BotConnector:
    def __init__(self, settings: TeamsSettings, session: aiohttp.ClientSession,
                 limiter: ConversationLimiter | None = None,
                 on_wait: Callable[[float], None] | None = None,
                 live: Callable[[], int] | None = None) -> None:
        self.session = session
        self.tokens = TokenSource(settings, session)
        # ``live``: the replicas sharing Teams' limits (each takes its part of every window)
        self.limiter = limiter or ConversationLimiter(live=live)
        self.app_limiter = ConversationLimiter(APP_WINDOWS, live=live)
        self.backoff_base_s = BASE_BACKOFF_S
        self.on_wait = on_wait  # hears of every rate-limit wait, in seconds (the metrics)

    def _waited(self, seconds: float) -> None:
        if self.on_wait is not None:
            try:
                self.on_wait(seconds)
            except Exception:  # a figure must never cost a send
                log.exception("reporting a Teams rate-limit wait failed")

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any],
                   reply_to: str = "") -> str:
        """Post an activity (a reply to ``reply_to`` when given); the new activity's id."""
        path = f"v3/conversations/{_seg(conversation_id)}/activities"
        if reply_to:
            path += f"/{_seg(reply_to)}"
            activity = {**activity, "replyToId": reply_to}
        answer = await self._call("POST", service_url, path, activity, pace=conversation_id)
        return str(answer.get("id", ""))

    async def update(self, service_url: str, conversation_id: str, activity_id: str,
                     activity: dict[str, Any]) -> None:
        path = f"v3/conversations/{_seg(conversation_id)}/activities/{_seg(activity_id)}"
        await self._call("PUT", service_url, path, {**activity, "id": activity_id},
                         pace=conversation_id)

    async def delete(self, service_url: str, conversation_id: str, activity_id: str) -> None:
        path = f"v3/conversations/{_seg(conversation_id)}/activities/{_seg(activity_id)}"
        await self._call("DELETE", service_url, path, None, pace=conversation_id)

    async def create_conversation(self, service_url: str,
                                  parameters: dict[str, Any]) -> dict[str, Any]:
        """``POST v3/conversations``: a 1:1 chat with a user, or a new post in a channel."""
        pace = str((parameters.get("channelData") or {}).get("channel", {}).get("id") or
                   (parameters.get("members") or [{}])[0].get("id", "create"))
        return await self._call("POST", service_url, "v3/conversations", parameters, pace=pace)

    async def member(self, service_url: str, conversation_id: str,
                     user_id: str) -> dict[str, Any] | None:
        """A member's profile (``email``, ``userPrincipalName``, ``name``); None if unknown."""
        path = f"v3/conversations/{_seg(conversation_id)}/members/{_seg(user_id)}"
        try:
            return await self._call("GET", service_url, path, None, pace="")
        except ConversationGone:
            return None

    async def _call(self, method: str, service_url: str, path: str,
                    body: dict[str, Any] | None, *, pace: str) -> dict[str, Any]:
        url = service_url.rstrip("/") + "/" + path
        for attempt in range(1, MAX_ATTEMPTS + 1):
            waited = await self.app_limiter.wait("app")
            if pace:
                waited += await self.limiter.wait(pace)
            if waited > 0:
                self._waited(waited)  # Teams' limits, kept on pimbot's side
            headers = {"Content-Type": "application/json; charset=utf-8"}
            token = await self.tokens.token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            retry_after: str | None = None
            try:
                status, text, retry_after = await self._once(method, url, body, headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text = 0, type(exc).__name__
            if 200 <= status < 300:
                return _json_object(text)
            if status in GONE_STATUSES:
                raise ConversationGone(status, _error_text(text))
            if (status in RETRYABLE_STATUSES or status == 0) and attempt < MAX_ATTEMPTS:
                delay = backoff_delay(attempt, retry_after, self.backoff_base_s)
                log.info("Bot Connector %s %s answered %s; retrying in %.1fs", method, path,
                         status or "no answer", delay)
                await asyncio.sleep(delay)
                if status == RATE_LIMITED:
                    self._waited(delay)
                continue
            raise ConnectorError(status, _error_text(text))
        raise ConnectorError(0, "gave up")  # pragma: no cover - the loop always returns/raises

    async def _once(self, method: str, url: str, body: dict[str, Any] | None,
                    headers: dict[str, str]) -> tuple[int, str, str | None]:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(method, url, data=data, headers=headers,
                                        timeout=timeout) as response:
            return response.status, await response.text(), response.headers.get("Retry-After")


def _seg(value: str) -> str:
    """A path segment: Teams ids hold ``:``, ``;``, ``@`` and ``=`` (kept), never ``/``."""
    return quote(value, safe=":;@=-_.!~*'()")


def _json_object(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_text(text: str) -> str:
    data = _json_object(text)
    error = data.get("error")
    if isinstance(error, dict):
        return f"{error.get('code', '')} {error.get('message', '')}".strip()[:200]
    return text.strip()[:200] or "no body"
