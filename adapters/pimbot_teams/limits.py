"""Teams' rate limits for a bot, kept on the pimbot side so sends wait instead of failing.

Per bot per conversation, sends (and conversation creation) may not exceed 7 in 1 s, 8 in
2 s, 60 in 30 s and 1800 in an hour (msteams-docs ``bots/how-to/rate-limit.md``; see
../shared/fixtures/NOTES.md). ``ConversationLimiter.wait`` sleeps until one more send fits in
every window for that conversation; every call also fits Teams' 50 a second per app and
tenant (one window for the process). Answers of 429 / 412 / 502 / 504 are retried by the
connector with exponential backoff, jitter and the server's ``Retry-After``.

The windows are in memory, one set per process; with several replicas each takes an equal
part of every limit: ``limit // live`` (at least 1), ``live`` being the replicas alive at the
last heartbeat (``pimbot.scheduling.replicas``). N replicas together then never send more
than the platform's limit to a conversation (N * (limit // N) <= limit), at no database round
trip per send. The price: a conversation that only one replica sends to gets 1/N of its rate,
and for a heartbeat (2 s) after a replica joins the others still use their larger part; the
connector's 429 retries absorb that. (Shared windows in the database would be exact, at a
round trip and a row lock per send: not worth it for chat notices.)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

SEND_WINDOWS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
APP_WINDOWS: tuple[tuple[float, int], ...] = ((1.0, 50),)  # per app per tenant, every call
RETRYABLE_STATUSES = frozenset({412, 429, 502, 504})
MAX_ATTEMPTS = 5
BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0
KEPT_CONVERSATIONS = 10_000


class ConversationLimiter:
    """Sliding windows of send times, one set per conversation."""

    def __init__(self, windows: tuple[tuple[float, int], ...] = SEND_WINDOWS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 live: Callable[[], int] | None = None) -> None:
        self.windows = windows
        self.live = live  # how many replicas share the limits (None: this process alone)
        self._clock = clock
        self._sleep = sleep
        self._sent: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._longest = max(span for span, _ in windows)

    async def wait(self, conversation_id: str) -> float:
        """Sleep until a send to ``conversation_id`` fits; record it; the seconds waited."""
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        waited = 0.0
        async with lock:
            sent = self._sent.setdefault(conversation_id, deque())
            while True:
                now = self._clock()
                while sent and now - sent[0] >= self._longest:
                    sent.popleft()
                delay = self._delay(sent, now)
                if delay <= 0:
                    sent.append(now)
                    break
                waited += delay
                await self._sleep(delay)
        self._forget_idle()
        return waited

    def _delay(self, sent: deque[float], now: float) -> float:
        delay = 0.0
        replicas = max(1, self.live()) if self.live is not None else 1
        for span, whole in self.windows:
            limit = max(1, whole // replicas)  # this replica's part of the platform's limit
            inside = [t for t in sent if now - t < span]
            if len(inside) >= limit:
                delay = max(delay, inside[-limit] + span - now)
        return delay

    def _forget_idle(self) -> None:
        if len(self._sent) <= KEPT_CONVERSATIONS:
            return
        now = self._clock()
        for key in [k for k, v in self._sent.items() if not v or now - v[-1] > self._longest]:
            self._sent.pop(key, None)
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                self._locks.pop(key, None)


def backoff_delay(attempt: int, retry_after: str | None, base: float = BASE_BACKOFF_S) -> float:
    """Seconds before retry ``attempt`` (1-based): ``Retry-After`` if the server gave one
    (capped), else capped exponential backoff with full jitter."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    ceiling = min(MAX_BACKOFF_S, base * (2 ** (attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)
