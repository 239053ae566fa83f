"""Teams people: user id → email through the Bot Connector's member lookup, and the
personal-chat conversation reference stored with them (``PimCore.remember_identity``).

A person is learned from every message and from ``conversationUpdate`` /
``installationUpdate``. The lookup answer is trusted for ``identity_ttl_s`` (measured on the
core's clock against the stored row), so a chatty person costs one lookup an hour. The
reference is taken from a personal chat; from a channel pimbot keeps only what lets it open a
personal chat later (the gateway creates it on the first message), and never in place of a
personal chat's reference.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pimbot.workflow.actor import Actor
from pimbot_teams.connector import BotConnector, ConnectorError
from pimbot_teams.core_port import TeamsCore
from pimbot_teams.translate import Inbound, conversation_ref, reach_ref

log = logging.getLogger(__name__)

PLATFORM = "teams"


class NoEmail(Exception):
    """The Teams user has no email or UPN pimbot can see."""


class TeamsPeople:
    def __init__(self, core: TeamsCore, connector: BotConnector, ttl: timedelta) -> None:
        self.core = core
        self.connector = connector
        self.ttl = ttl

    async def actor(self, inbound: Inbound) -> Actor:
        """Who sent this activity, by email (looked up, or as stored while fresh)."""
        known = await self.core.identity(PLATFORM, inbound.user_id)
        now = self.core.clock.now()
        fresh = known is not None and now - known.updated_at < self.ttl
        email = known.email if known is not None else ""
        name = inbound.user_name or (known.display_name if known is not None else "")
        found = None if fresh else await self._lookup(inbound)
        if found is not None:
            email, name = found[0], found[1] or name
        if not email:
            raise NoEmail(inbound.user_id)
        personal = conversation_ref(inbound) if inbound.personal else None
        reach = reach_ref(inbound) if not inbound.personal and inbound.service_url else None
        stored = known.conversation_ref if known is not None else None
        changed = known is None or known.email != email or (
            personal is not None and personal != stored) or (reach is not None and not stored)
        if found is not None or changed:
            await self.core.remember_identity(PLATFORM, inbound.user_id, email, name, personal,
                                              ref_if_unset=reach)
        return Actor(email=email, platform=PLATFORM, user_id=inbound.user_id,
                     display_name=name, in_direct_message=inbound.personal)

    async def learn(self, inbound: Inbound) -> None:
        """A person seen in an install or membership event: remember them if possible."""
        if not inbound.user_id.startswith("29:"):
            return  # the bot itself, or no user at all
        try:
            await self.actor(inbound)
        except NoEmail:
            log.info("a Teams user without a visible email installed pimbot")
        except ConnectorError as exc:
            log.warning("could not look up a Teams user who installed pimbot (%s)", exc.status)

    async def _lookup(self, inbound: Inbound) -> tuple[str, str] | None:
        try:
            member = await self.connector.member(inbound.service_url,
                                                 inbound.lookup_conversation, inbound.user_id)
        except ConnectorError as exc:
            log.warning("Teams member lookup failed (%s)", exc.status)
            return None
        if member is None:
            return None
        email = str(member.get("email") or member.get("userPrincipalName") or "")
        return email.strip().lower(), str(member.get("name") or "")
