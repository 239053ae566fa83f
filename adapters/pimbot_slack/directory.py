"""Slack user id ↔ email over the Web API (``users.info``, ``users.lookupByEmail``), cached.

Answers are cached for a TTL measured on the core's Clock, in LRU tables of at most
``KEPT_PROFILES`` people each way. Misses (an id or email Slack does not know) are cached for a
short time too, so a card to an absent approver does not hammer a Tier 3 method, in a
separate table of at most ``KEPT_MISSES``: made-up ids cannot grow it, nor push real people
out of the profiles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cachetools import LRUCache, TTLCache
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from pimbot.ports import Clock

log = logging.getLogger(__name__)

NOT_FOUND_ERRORS = frozenset({"users_not_found", "user_not_found", "account_inactive"})
MISS_TTL = timedelta(minutes=1)
KEPT_PROFILES = 10_000
KEPT_MISSES = 1_000


@dataclass(frozen=True)
class SlackProfile:
    user_id: str
    email: str  # "" when Slack does not show one (no email, or no users:read.email scope)
    display_name: str
    is_bot: bool = False
    team_id: str = ""  # the person's home workspace (another one for Slack Connect people)
    enterprise_id: str = ""  # their Enterprise Grid organisation, if any
    is_stranger: bool = False  # Slack's word for a person from another organisation
    is_guest: bool = False  # is_restricted (multi-channel) or is_ultra_restricted (single)


@dataclass
class _Entry:
    value: SlackProfile
    until: datetime


class SlackDirectory:
    """IdentityDirectory for Slack (``email_of`` / ``user_id_of``) plus full profiles."""

    def __init__(self, client: AsyncWebClient, clock: Clock, ttl: timedelta) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        # bounded: a workspace of any size keeps at most KEPT_PROFILES people each way
        self._by_id: LRUCache[str, _Entry] = LRUCache(maxsize=KEPT_PROFILES)
        self._by_email: LRUCache[str, _Entry] = LRUCache(maxsize=KEPT_PROFILES)
        # "id:U…" / "email:…" → True, for MISS_TTL on the core's Clock
        self._misses: TTLCache[str, bool] = TTLCache(
            maxsize=KEPT_MISSES, ttl=MISS_TTL.total_seconds(),
            timer=lambda: clock.now().timestamp())

    async def profile(self, user_id: str) -> SlackProfile | None:
        """``users.info``; None when Slack does not know the user."""
        cached = self._fresh(self._by_id, user_id)
        if cached is not None:
            return cached.value
        if f"id:{user_id}" in self._misses:
            return None
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            if slack_error(exc) in NOT_FOUND_ERRORS:
                self._misses[f"id:{user_id}"] = True
                return None
            raise
        found = _profile(response.get("user") or {})
        self._store(self._by_id, user_id, found, self._ttl)
        if found.email:
            self._store(self._by_email, found.email.lower(), found, self._ttl)
        return found

    def is_cached(self, user_id: str) -> bool:
        return self._fresh(self._by_id, user_id) is not None or f"id:{user_id}" in self._misses

    async def email_of(self, user_id: str) -> str | None:
        found = await self.profile(user_id)
        return found.email if found is not None and found.email else None

    async def user_id_of(self, email: str) -> str | None:
        """``users.lookupByEmail``; None when nobody in the workspace has this email."""
        key = email.strip().lower()
        cached = self._fresh(self._by_email, key)
        if cached is not None:
            return cached.value.user_id or None
        if f"email:{key}" in self._misses:
            return None
        try:
            response = await self._client.users_lookupByEmail(email=key)
        except SlackApiError as exc:
            if slack_error(exc) in NOT_FOUND_ERRORS:
                log.info("no Slack user for an approver's email", extra={"email": key})
                self._misses[f"email:{key}"] = True
                return None
            raise
        found = _profile(response.get("user") or {})
        self._store(self._by_email, key, found, self._ttl)
        return found.user_id or None

    async def user_ids_of(self, emails: Iterable[str]) -> dict[str, str]:
        """email (lower case) → user id for every email that resolves."""
        resolved: dict[str, str] = {}
        for email in emails:
            user_id = await self.user_id_of(email)
            if user_id:
                resolved[email.lower()] = user_id
        return resolved

    def _fresh(self, table: MutableMapping[str, _Entry], key: str) -> _Entry | None:
        entry = table.get(key)
        if entry is None or entry.until <= self._clock.now():
            return None
        return entry

    def _store(
        self, table: MutableMapping[str, _Entry], key: str, value: SlackProfile,
        ttl: timedelta,
    ) -> SlackProfile:
        table[key] = _Entry(value, self._clock.now() + ttl)
        return value


def _profile(user: dict[str, Any]) -> SlackProfile:
    profile = user.get("profile") or {}
    name = (
        profile.get("real_name")
        or profile.get("display_name")
        or user.get("real_name")
        or user.get("name")
        or ""
    )
    enterprise = user.get("enterprise_user") or {}
    return SlackProfile(
        user_id=str(user.get("id", "")),
        email=str(profile.get("email") or ""),
        display_name=str(name),
        is_bot=bool(user.get("is_bot")),
        team_id=str(user.get("team_id") or ""),
        enterprise_id=str(enterprise.get("enterprise_id") or ""),
        is_stranger=bool(user.get("is_stranger")),
        is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
    )


def slack_error(exc: SlackApiError) -> str:
    response = exc.response
    data = response.data if response is not None else None
    return str(data.get("error", "")) if isinstance(data, dict) else ""
