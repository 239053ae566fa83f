"""Which Slack workspace this pimbot serves, and where each request and person stands to it.

The workspace is learned from ``auth.test`` (the bot token's own workspace) when the adapter
starts, and can be pinned with ``PIMBOT_SLACK_TEAM_ID`` (a ``T…`` team id, or the ``E…`` id of
an Enterprise Grid organisation for an org-wide install): when both are known they must
agree, or the adapter refuses to start. If Slack cannot be asked at start, it is asked again
on the next request; until the workspace is known, requests are refused (never trusted).

Only facts are read here (the ``Standing`` of a request); the core decides what may pass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from pimbot.domain.admission import Standing
from pimbot.domain.errors import ErrorCode, PimError
from pimbot_slack.directory import SlackProfile

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Origin:
    """Where a request says it comes from (``team_id`` / ``enterprise_id`` in its payload)."""

    team_id: str = ""
    enterprise_id: str = ""


@dataclass(frozen=True)
class Workspace:
    team_id: str
    enterprise_id: str = ""
    org_wide: bool = False  # an org-wide Enterprise Grid install: every workspace of it

    def serves(self, origin: Origin) -> bool:
        """Did the request come from this workspace (or, org-wide, from this organisation)?"""
        if self.org_wide:
            return bool(origin.enterprise_id) and origin.enterprise_id == self.enterprise_id
        return bool(origin.team_id) and origin.team_id == self.team_id

    def standing_of(self, profile: SlackProfile) -> Standing:
        """A person of this workspace (member or guest), or from another organisation."""
        if profile.is_stranger or not self._is_home(profile):
            return Standing.EXTERNAL
        return Standing.GUEST if profile.is_guest else Standing.MEMBER

    def _is_home(self, profile: SlackProfile) -> bool:
        if self.enterprise_id and profile.enterprise_id == self.enterprise_id:
            return True  # the same Enterprise Grid organisation
        return not self.org_wide and bool(profile.team_id) and profile.team_id == self.team_id


def origin_of(body: Mapping[str, Any]) -> Origin:
    """Slash commands and events carry ``team_id`` / ``enterprise_id``; interactions carry
    ``team`` and ``enterprise`` objects (``enterprise`` is null outside Enterprise Grid)."""
    team = _mapping(body.get("team"))
    enterprise = _mapping(body.get("enterprise"))
    return Origin(
        team_id=str(body.get("team_id") or team.get("id") or ""),
        enterprise_id=str(body.get("enterprise_id") or enterprise.get("id") or ""),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def workspace_unknown() -> PimError:
    return PimError(
        ErrorCode.NOT_AVAILABLE,
        "pimbot cannot confirm which Slack workspace it serves right now, so it takes no "
        "requests; nothing was changed",
        "again in a minute",
    )


class WorkspaceSource:
    """The served workspace: pinned by a setting and/or learned from ``auth.test``, once."""

    def __init__(self, client: AsyncWebClient, pinned: str = "") -> None:
        self._client = client
        self._pinned = pinned.strip()
        self._known: Workspace | None = None

    async def learn(self) -> Workspace:
        """Ask ``auth.test``; raise PimError if it names another workspace than the pin."""
        response = await self._client.auth_test()
        learned = Workspace(
            team_id=str(response.get("team_id") or ""),
            enterprise_id=str(response.get("enterprise_id") or ""),
            org_wide=bool(response.get("is_enterprise_install")),
        )
        if self._pinned and self._pinned not in {learned.team_id, learned.enterprise_id}:
            raise PimError(
                ErrorCode.NOT_AVAILABLE,
                f"SLACK_BOT_TOKEN belongs to Slack workspace {learned.team_id or '?'}, but "
                f"PIMBOT_SLACK_TEAM_ID is {self._pinned}",
                "use the bot token of the workspace pimbot should serve, or fix the setting",
            )
        self._known = learned
        log.info("serving Slack workspace", extra={"team_id": learned.team_id,
                                                   "enterprise_id": learned.enterprise_id})
        return learned

    async def get(self) -> Workspace:
        """The served workspace; PimError (refuse the request) while it cannot be known."""
        if self._known is not None:
            return self._known
        try:
            return await self.learn()
        except SlackApiError as exc:
            log.warning("auth.test failed", extra={"error": str(exc.response.get("error"))})
        except OSError as exc:
            log.warning("auth.test failed", extra={"error": type(exc).__name__})
        if self._pinned:
            org_wide = self._pinned.startswith("E")
            return Workspace(team_id="" if org_wide else self._pinned,
                             enterprise_id=self._pinned if org_wide else "", org_wide=org_wide)
        raise workspace_unknown()
