"""Calls to Microsoft Graph and Azure Resource Manager: bearer tokens, throttling, paging.

Every provider operation runs against one ``Budget`` (the provider's timeout, at most 30 s):
a 429 or 503 is retried after its ``Retry-After`` when that still fits in the budget, and
otherwise ends the operation with a retryable ``ProviderError`` (the job's own backoff takes
over). A 401 saying the token is no longer valid renews the credential once. Paging follows
``@odata.nextLink`` (Graph) and ``nextLink`` (ARM), only ever to the same service: a link
elsewhere would carry the bearer token away, so it is refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from pimbot.providers.errors import ProviderError
from pimbot.providers.microsoft.credentials import TokenSource

log = logging.getLogger(__name__)

THROTTLED = frozenset({429, 503})
MAX_TRIES = 6  # a throttled call is tried at most this often within its budget
DEFAULT_WAIT = 1.0  # seconds, when a 429/503 gives no Retry-After (doubled each time)

Sleep = Callable[[float], Awaitable[None]]


class Budget:
    """The time one provider operation may take, on the event loop's monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = asyncio.get_running_loop().time() + seconds

    def left(self) -> float:
        return max(0.0, self._deadline - asyncio.get_running_loop().time())


@dataclass(frozen=True)
class Service:
    name: str  # "Microsoft Graph", "Azure Resource Manager"
    base_url: str  # bare, without a trailing slash: https://graph.microsoft.com

    @property
    def scope(self) -> str:
        return f"{self.base_url}/.default"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the parsed JSON, or None
    code: str = ""  # error.code of an error body
    message: str = ""  # error.message

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Api:
    """One service for one provider. ``http`` gives the provider's session (created lazily
    in the event loop); ``sleep`` is injectable so tests see the waits without waiting."""

    def __init__(self, provider: str, service: Service, tokens: TokenSource,
                 http: Callable[[], aiohttp.ClientSession], *, sleep: Sleep = asyncio.sleep
                 ) -> None:
        self.provider = provider
        self.service = service
        self._tokens = tokens
        self._http = http
        self._sleep = sleep

    def url(self, path: str) -> str:
        return path if path.startswith("https://") or path.startswith("http://") \
            else f"{self.service.base_url}{path}"

    async def call(self, method: str, path: str, budget: Budget, *,
                   body: Any = None, params: Mapping[str, str] | None = None) -> Answer:
        url = self.url(path)
        self._same_service(url)
        renewed = False
        wait = DEFAULT_WAIT
        for _ in range(MAX_TRIES):
            answer, headers = await self._send(method, url, budget, body, params)
            if answer.status == 401 and not renewed:
                renewed = True
                await self._tokens.renew()
                continue
            if answer.status not in THROTTLED:
                return answer
            asked = retry_after(headers, datetime.now(UTC))
            delay = asked if asked is not None else wait
            wait *= 2
            if delay >= budget.left():
                raise ProviderError(
                    f"{self.provider}: {self.service.name} answered {answer.status} "
                    f"{answer.code or ''} to {method} and asks to retry after {delay:g}s, "
                    f"beyond the {budget.seconds:g}s timeout; retrying later".replace("  ", " "),
                    public=f"{self.service.name} is busy; pimbot retries")
            log.info("%s: %s answered %s to %s; retrying after %gs", self.provider,
                     self.service.name, answer.status, method, delay)
            await self._sleep(delay)
        raise ProviderError(f"{self.provider}: {self.service.name} kept answering "
                            f"{answer.status} to {method}; retrying later")

    async def pages(self, path: str, budget: Budget,
                    params: Mapping[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every item of a listing, following next links within the same service."""
        answer = await self.call("GET", path, budget, params=params)
        while True:
            if not answer.ok:
                raise self.failure(answer, f"list {path.split('?')[0]}")
            body = answer.body if isinstance(answer.body, dict) else {}
            for item in body.get("value") or []:
                if isinstance(item, dict):
                    yield item
            link = body.get("@odata.nextLink") or body.get("nextLink")
            if not isinstance(link, str) or not link:
                return
            answer = await self.call("GET", link, budget)

    def failure(self, answer: Answer, action: str, *, permission: str = "",
                retryable: bool | None = None) -> ProviderError:
        """A ProviderError for an unexpected answer: 403 names the permission that is missing
        (and is final), other 4xx are final, 5xx and anything else are retried."""
        what = f"{self.provider}: {self.service.name} answered {answer.status}"
        if answer.code:
            what += f" {answer.code}"
        detail = f" ({answer.message[:300]})" if answer.message else ""
        if answer.status == 403:
            needs = f"; pimbot's app needs {permission}" if permission else ""
            return ProviderError(f"{what} to {action}{needs}{detail}", retryable=False,
                                 public=f"pimbot lacks the {permission} permission"
                                 if permission else "pimbot lacks a permission")
        final = 400 <= answer.status < 500 if retryable is None else not retryable
        return ProviderError(f"{what} to {action}{detail}", retryable=not final)

    def _same_service(self, url: str) -> None:
        if not (url == self.service.base_url or url.startswith(self.service.base_url + "/")):
            raise ProviderError(f"{self.provider}: refusing to follow a link outside "
                                f"{self.service.base_url}", retryable=False)

    async def _send(self, method: str, url: str, budget: Budget, body: Any,
                    params: Mapping[str, str] | None) -> tuple[Answer, Mapping[str, str]]:
        where = f"{self.provider}: {method} {self.service.name}"
        left = budget.left()
        if left <= 0:
            raise ProviderError(f"{where} ran out of its {budget.seconds:g}s timeout")
        http = self._http()
        try:
            async with asyncio.timeout(left):
                token = await self._tokens.token(self.service.scope, http)
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                           "User-Agent": "pimbot"}
                async with http.request(method, url, json=body, params=params, headers=headers,
                                        allow_redirects=False) as response:
                    raw = await response.read()
                    return _answer(response.status, raw), dict(response.headers)
        except TimeoutError:
            raise ProviderError(f"{where} timed out after {budget.seconds:g}s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{where} failed: {type(exc).__name__}") from None


def _answer(status: int, raw: bytes) -> Answer:
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return Answer(status, body, str(error.get("code") or ""), str(error.get("message") or ""))
    return Answer(status, body)
