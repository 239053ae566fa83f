"""Teams people: user id → email and standing through the Bot Connector's member lookup, the
core's admission of each caller, and the conversation reference stored with them
(``PimCore.remember_identity``).

A person is learned from every message and from ``conversationUpdate`` /
``installationUpdate``. Lookups are cached for ``identity_ttl_s`` on the core's clock. Where a
person stands comes from the lookup: a guest account (``userRole: guest``) is a guest, someone
of another tenant (a shared channel) or an anonymous user is external; the core decides
whether they may go on. When the lookup cannot be made (the connector down or throttled past
its retries), what the core stored at the last lookup that succeeded stands in, standing
included: a guest stays a guest. When Teams answers that the sender is no member of the
conversation (403 / 404), nothing stored stands in, and nor does it for a row stored without
a standing: the person is ``UNCONFIRMED``, which the core refuses. The reference is taken
from a personal chat; from a channel pimbot keeps only what lets it open a personal chat
later, and never in place of a personal chat's reference (decided in the core's transaction:
``ref_if_unset``). A person mentioned in a command (``<at>Bob Smith</at>``) is the mention
entity's user id, looked up the same way: the name shown is never used to find anyone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pimbot.domain.admission import Caller, Standing
from pimbot.ui.cards import Reply
from pimbot.workflow.actor import Actor
from pimbot_teams.connector import BotConnector, ConnectorError
from pimbot_teams.core_port import TeamsCore
from pimbot_teams.render import COMMAND_PREFIX
from pimbot_teams.translate import (
    Inbound,
    UserMention,
    conversation_ref,
    reach_ref,
    user_mentions,
)

log = logging.getLogger(__name__)

PLATFORM = "teams"
KEPT_PROFILES = 10_000
# what a stored standing may stand in as: only the standings a person is ever stored with
_STORED = frozenset({Standing.MEMBER.value, Standing.GUEST.value})


class NoEmail(Exception):
    """The Teams user has no email or UPN pimbot can see."""


class LookupUnavailable(Exception):
    """The member lookup could not be made (not: Teams said there is no such member)."""


class Refused(Exception):
    """The core refused the caller at the edge; ``reply`` says so in one line."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


@dataclass(frozen=True)
class TeamsProfile:
    email: str
    name: str
    standing: Standing


@dataclass
class _Entry:
    profile: TeamsProfile
    until: datetime


class TeamsPeople:
    def __init__(self, core: TeamsCore, connector: BotConnector, ttl: timedelta) -> None:
        self.core = core
        self.connector = connector
        self.ttl = ttl
        self._profiles: dict[str, _Entry] = {}

    async def actor(self, inbound: Inbound, what: str) -> Actor:
        """Who sent this activity, once the core has admitted them (else ``Refused``)."""
        profile = await self.profile(inbound)
        if not profile.email and profile.standing is not Standing.UNCONFIRMED:
            raise NoEmail(inbound.user_id)
        inside = profile.standing in {Standing.MEMBER, Standing.GUEST}
        caller = Caller(PLATFORM, inbound.user_id, profile.standing,
                        email=profile.email if inside else "", team=inbound.tenant_id)
        refusal = await self.core.admit(caller, what)
        if refusal is not None:
            raise Refused(refusal)
        await self._remember(inbound, profile)
        return Actor(email=profile.email, platform=PLATFORM, user_id=inbound.user_id,
                     display_name=profile.name, in_direct_message=inbound.personal,
                     command_prefix=COMMAND_PREFIX)

    async def learn(self, inbound: Inbound) -> None:
        """A person seen in an install or membership event: remember them if admitted."""
        if not inbound.user_id.startswith("29:"):
            return  # the bot itself, or no user at all
        try:
            await self.actor(inbound, str(inbound.type))
        except NoEmail:
            log.info("a Teams user without a visible email installed pimbot")
        except Refused:
            log.info("a Teams user pimbot does not serve installed it")
        except ConnectorError as exc:
            log.warning("could not look up a Teams user who installed pimbot (%s)", exc.status)

    async def profile(self, inbound: Inbound) -> TeamsProfile:
        entry = self._profiles.get(inbound.user_id)
        now = self.core.clock.now()
        if entry is not None and entry.until > now:
            return entry.profile
        try:
            found = await self._member(inbound, inbound.user_id, inbound.user_name)
        except LookupUnavailable:
            return await self._stored(inbound.user_id)
        if found is None:  # Teams says the sender is no member of this conversation
            return TeamsProfile("", inbound.user_name, Standing.UNCONFIRMED)
        self._keep(inbound.user_id, found)
        return found

    async def _stored(self, user_id: str) -> TeamsProfile:
        """What the last lookup that succeeded said of ``user_id``, as the core stored it;
        ``UNCONFIRMED`` when it stored nothing, or no standing (a row from before 0021)."""
        known = await self.core.identity(PLATFORM, user_id)
        if known is None:
            return TeamsProfile("", "", Standing.UNCONFIRMED)
        standing = Standing(known.standing) if known.standing in _STORED else Standing.UNCONFIRMED
        return TeamsProfile(known.email, known.display_name, standing)

    def _keep(self, user_id: str, profile: TeamsProfile) -> None:
        if len(self._profiles) >= KEPT_PROFILES:
            self._profiles.clear()
        self._profiles[user_id] = _Entry(profile, self.core.clock.now() + self.ttl)

    async def mentioned(self, inbound: Inbound) -> list[tuple[UserMention, str]]:
        """Each person mentioned in the message with their email: from the member lookup
        of the id Teams gives in the mention entity (cached like any profile), else from
        what the core stored for that id. A mention neither gives is left out."""
        found = []
        for mention in user_mentions(inbound):
            email = await self._email_of(inbound, mention.user_id)
            if email:
                found.append((mention, email))
        return found

    async def _email_of(self, inbound: Inbound, user_id: str) -> str:
        entry = self._profiles.get(user_id)
        if entry is not None and entry.until > self.core.clock.now():
            return entry.profile.email
        try:
            profile = await self._member(inbound, user_id, "")
        except LookupUnavailable:
            profile = None
        if profile is not None and profile.email:
            self._keep(user_id, profile)
            return profile.email
        known = await self.core.identity(PLATFORM, user_id)
        return known.email if known is not None else ""

    async def _remember(self, inbound: Inbound, profile: TeamsProfile) -> None:
        known = await self.core.identity(PLATFORM, inbound.user_id)
        personal = conversation_ref(inbound) if inbound.personal else None
        reach = reach_ref(inbound) if not inbound.personal and inbound.service_url else None
        stored = known.conversation_ref if known is not None else None
        unchanged = known is not None and known.email == profile.email and (
            known.standing == profile.standing.value) and (
            personal is None or personal == stored) and (reach is None or stored is not None)
        if not unchanged:
            await self.core.remember_identity(PLATFORM, inbound.user_id, profile.email,
                                              profile.name, personal, ref_if_unset=reach,
                                              standing=profile.standing.value)

    async def _member(self, inbound: Inbound, user_id: str, name: str) -> TeamsProfile | None:
        """The Bot Connector's member lookup of ``user_id`` in the activity's conversation: None
        when Teams answers that there is no such member there, ``LookupUnavailable`` when it
        does not answer at all (down, throttled, a 5xx after the connector's retries)."""
        try:
            member = await self.connector.member(inbound.service_url,
                                                 inbound.lookup_conversation, user_id)
        except ConnectorError as exc:
            log.warning("Teams member lookup failed (%s)", exc.status)
            raise LookupUnavailable(exc.status) from None
        if member is None:
            return None
        email = str(member.get("email") or member.get("userPrincipalName") or "")
        name = str(member.get("name") or name or "")
        return TeamsProfile(email.strip().lower(), name, standing_of(member, inbound.tenant_id))


def standing_of(member: dict[str, Any], tenant_id: str) -> Standing:
    """Where a looked-up member stands in the tenant the activity came from."""
    role = str(member.get("userRole") or "user").lower()
    home = str(member.get("tenantId") or tenant_id).lower()
    if role == "anonymous" or (tenant_id and home != tenant_id.lower()):
        return Standing.EXTERNAL
    if role == "guest":
        return Standing.GUEST
    return Standing.MEMBER
