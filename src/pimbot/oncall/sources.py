"""On-call sources over their real REST APIs, answers cached briefly, failing closed.

- PagerDuty: ``GET /oncalls?schedule_ids[]=ID&since=…&until=…&include[]=users`` (paginated
  with ``offset`` / ``more``), ``Authorization: Token token=TOKEN``.
- Opsgenie: ``GET /v2/schedules/ID/timeline?identifierType=id&date=…`` (the final timeline's
  periods with their recipient), ``Authorization: GenieKey TOKEN``.

People are matched by email (PagerDuty's user ``email``, Opsgenie's recipient ``name``, which
is the user's email). A 429 is waited out once per page (``Retry-After``, at most a few
seconds); any other failure becomes ``OnCallAnswer(error=…)``: the rule then fails closed and a
human decides. Tokens come from the environment variables the policy names and are never
logged.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cachetools import TTLCache

from pimbot.domain.approval_rules import OnCallAnswer
from pimbot.domain.model import OnCallSourceConfig

if TYPE_CHECKING:  # imported on the first lookup: a policy without on-call never loads it
    import aiohttp

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
TIMEOUT_SECONDS = 10.0
MAX_RETRY_AFTER = 5.0
PAGE = 100


class OnCallError(Exception):
    """The source could not say (down, refused the token, rate-limited for too long)."""


@dataclass(frozen=True)
class Shift:
    email: str
    start: datetime | None
    end: datetime | None


class OnCallSource(Protocol):
    async def lookup(self, schedule: str, email: str, now: datetime) -> OnCallAnswer: ...

    async def close(self) -> None: ...


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class HttpOnCallSource(ABC):
    kind = ""
    auth_scheme = ""

    def __init__(self, config: OnCallSourceConfig, token: str | None) -> None:
        self.config = config
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._cache: TTLCache[str, list[Shift]] = TTLCache(maxsize=256, ttl=CACHE_SECONDS)

    async def lookup(self, schedule: str, email: str, now: datetime) -> OnCallAnswer:
        import aiohttp

        named = f"{self.kind}:{schedule}"
        try:
            shifts = self._cache.get(schedule)
            if shifts is None:
                shifts = await self.shifts(schedule, now)
                self._cache[schedule] = shifts
        except (OnCallError, aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            reason = str(exc) if isinstance(exc, OnCallError) else type(exc).__name__
            log.warning("on-call lookup on %s failed: %s", named, reason)
            return OnCallAnswer(named, error=reason)
        for shift in shifts:
            current = (shift.start is None or shift.start <= now) and \
                (shift.end is None or now < shift.end)
            if shift.email == email.lower() and current:
                return OnCallAnswer(named, True, shift.start, shift.end)
        return OnCallAnswer(named, False)

    @abstractmethod
    async def shifts(self, schedule: str, now: datetime) -> list[Shift]:
        """Everyone on the schedule around ``now``, with their shift."""

    async def get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        if not self._token:
            raise OnCallError(f"{self.config.token_env} is not set")
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        url = self.config.api_url.rstrip("/") + path
        credential = f"token={self._token}" if self.kind == "pagerduty" else self._token
        headers = {"Authorization": f"{self.auth_scheme} {credential}",
                   "Accept": "application/json"}
        for attempt in range(2):
            async with self._session.get(url, params=params, headers=headers) as response:
                if response.status == 429 and attempt == 0:
                    wait = float(response.headers.get("Retry-After", "1") or 1)
                    if wait > MAX_RETRY_AFTER:
                        raise OnCallError(f"{self.kind} rate-limited for {wait:g}s")
                    await asyncio.sleep(wait)
                    continue
                if response.status in (401, 403):
                    raise OnCallError(f"{self.kind} refused the token ({response.status})")
                if response.status >= 400:
                    raise OnCallError(f"{self.kind} answered {response.status}")
                body: dict[str, Any] = await response.json(content_type=None)
                return body
        raise OnCallError(f"{self.kind} rate-limited")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class PagerDutySource(HttpOnCallSource):
    kind = "pagerduty"
    auth_scheme = "Token"

    async def shifts(self, schedule: str, now: datetime) -> list[Shift]:
        since = now.isoformat().replace("+00:00", "Z")
        until = (now + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        found: list[Shift] = []
        offset = 0
        while True:
            body = await self.get("/oncalls", [
                ("schedule_ids[]", schedule), ("since", since), ("until", until),
                ("include[]", "users"), ("limit", str(PAGE)), ("offset", str(offset))])
            for entry in body.get("oncalls", []):
                email = str(entry.get("user", {}).get("email", "")).lower()
                if email:
                    found.append(Shift(email, _time(entry.get("start")),
                                       _time(entry.get("end"))))
            if not body.get("more"):
                return found
            offset += int(body.get("limit", PAGE))


class OpsgenieSource(HttpOnCallSource):
    kind = "opsgenie"
    auth_scheme = "GenieKey"

    async def shifts(self, schedule: str, now: datetime) -> list[Shift]:
        body = await self.get(f"/v2/schedules/{schedule}/timeline", [
            ("identifierType", "id"), ("interval", "1"), ("intervalUnit", "days"),
            ("date", now.isoformat().replace("+00:00", "Z"))])
        rotations = body["data"]["finalTimeline"].get("rotations", [])
        found: list[Shift] = []
        for rotation in rotations:
            for period in rotation.get("periods", []):
                recipient = period.get("recipient", {})
                if recipient.get("type") == "user" and recipient.get("name"):
                    found.append(Shift(str(recipient["name"]).lower(),
                                       _time(period.get("startDate")),
                                       _time(period.get("endDate"))))
        return found


SOURCES: dict[str, type[HttpOnCallSource]] = {
    "pagerduty": PagerDutySource, "opsgenie": OpsgenieSource}


def build_oncall_sources(configs: Mapping[str, OnCallSourceConfig],
                         env: Mapping[str, str]) -> dict[str, OnCallSource]:
    """One source per configured kind; a missing token answers every lookup with an error
    (the rule fails closed) rather than stopping pimbot."""
    return {name: SOURCES[config.kind](config, env.get(config.token_env))
            for name, config in configs.items()}
