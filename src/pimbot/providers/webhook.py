"""The webhook provider: a signed JSON POST to the user's own system (DESIGN.md wire format)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from pimbot.ports import Clock, GrantTarget
from pimbot.providers.errors import ProviderError
from pimbot.providers.wire import compact_json, iso_utc

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Pimbot-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookAction(StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"
    CHECK = "check"


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Pimbot-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookProvider:
    """POSTs ``grant`` / ``revoke`` / ``check`` to ``url``; any 2xx is success."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        clock: Clock,
        *,
        timeout: float = 10.0,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret.encode()
        self._clock = clock
        self._timeout = timeout
        self._http = http
        self._owns_http = http is None
        self._host = urlsplit(url).netloc.rsplit("@", 1)[-1]  # never log credentials in a URL

    async def grant(self, target: GrantTarget) -> str | None:
        await self._post(WebhookAction.GRANT, target)
        return None

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        await self._post(WebhookAction.REVOKE, target)

    async def check(self, target: GrantTarget) -> bool:
        answer = await self._post(WebhookAction.CHECK, target)
        active = answer.get("active") if isinstance(answer, dict) else None
        if not isinstance(active, bool):
            raise ProviderError(
                f'webhook {self.name}: check answer is not {{"active": true|false}}'
            )
        return active

    async def close(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.close()
        self._http = None

    def body(self, action: WebhookAction, target: GrantTarget) -> bytes:
        """The exact bytes that are sent and signed."""
        now = self._clock.now()
        payload = {
            "action": str(action),
            "user": target.email,
            "role": target.role,
            "grant": target.grant,
            "activation_id": target.activation_id,
            "starts_at": iso_utc(target.starts_at or now),
            "expires_at": iso_utc(target.expires_at) if target.expires_at else None,
            "sent_at": iso_utc(now),
        }
        return compact_json(payload).encode()

    def headers(self, action: WebhookAction, target: GrantTarget, body: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            IDEMPOTENCY_HEADER: f"{target.activation_id}:{action}",
            "User-Agent": "pimbot",
        }

    async def _post(self, action: WebhookAction, target: GrantTarget) -> Any:
        body = self.body(action, target)
        where = f"webhook {self.name}: {action} for {target.activation_id}"
        try:
            async with self._session().post(
                self._url,
                data=body,
                headers=self.headers(action, target, body),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status < 300:
                    raise ProviderError(f"{where} answered HTTP {response.status}")
                log.info("%s answered HTTP %s (%s)", where, response.status, self._host)
                if action is not WebhookAction.CHECK:
                    return None
                return await self._json(response, where)
        except TimeoutError as exc:
            raise ProviderError(f"{where} timed out after {self._timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{where} failed: {type(exc).__name__}") from exc

    async def _json(self, response: aiohttp.ClientResponse, where: str) -> Any:
        try:
            return json.loads(await response.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProviderError(f"{where}: the answer is not JSON") from exc

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        return self._http
