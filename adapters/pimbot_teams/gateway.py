"""Teams' outbound side: the core's ChatGateway over the Bot Connector REST API.

People are messaged proactively through the personal-chat conversation reference stored
with them (``platform_identities.conversation_ref``); for someone seen only in a channel the
personal chat is opened on the first message. Someone pimbot never heard from, or whom Teams
will not let it message (403: not installed for them), is Unreachable, which the core reports
to the requester and the notify channels.
Channels (``teams:19:…@thread.tacv2`` notify targets) get a new post, through the service
URL pimbot last heard that channel (or, failing that, its tenant) from.

A reply to a command typed in a channel or group chat goes to the person's personal chat,
never to the thread, which every member reads (Teams has no message for one reader, as Slack's
ephemeral ones are): the thread hears only that pimbot answered there, or that it could not.

``SentMessage.ref`` is ``{"service_url", "conversation", "activity", "user"}``. The card a
message shows is kept in ``teams_cards`` so an invoke can answer with it.

A card whose buttons are for its request's deciders (``Card.deciders_only``: approval
cards) is sent as its status, without buttons; its ``refresh.userIds`` lists the Teams ids of
the people the core names (``PimCore.deciders``; in a personal chat, its reader if they are
one), whom Teams then asks pimbot for their own version (``handlers``). A channel or team
pimbot was removed from is never posted to.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from pimbot.ports import PlatformIdentity, SentMessage, Unreachable
from pimbot.ui.cards import Card, Reply
from pimbot_teams.connector import BotConnector, ConversationGone
from pimbot_teams.core_port import TeamsCore
from pimbot_teams.directory import PLATFORM
from pimbot_teams.render import (
    COMMAND_PREFIX,
    Element,
    decider_refresh,
    message_activity,
    render_card,
    render_reply_card,
    text_blocks,
)
from pimbot_teams.settings import TeamsSettings
from pimbot_teams.store import TeamsStore
from pimbot_teams.translate import Inbound

log = logging.getLogger(__name__)

ANSWERED_PRIVATELY = "pimbot answered you in your personal chat with it."
NOT_ANSWERED_PRIVATELY = (
    "pimbot answers in a personal chat, not here, and could not open one with you (try: add "
    "pimbot for yourself in Teams' Apps, then ask it in that chat)"
)


class TeamsGateway:
    platform = PLATFORM
    command_prefix = COMMAND_PREFIX

    def __init__(self, core: TeamsCore, connector: BotConnector, store: TeamsStore,
                 settings: TeamsSettings) -> None:
        self.core = core
        self.connector = connector
        self.store = store
        self.settings = settings

    async def can_reach(self, email: str) -> bool:
        known = await self.core.identity_by_email(PLATFORM, email)
        return known is not None and bool(known.conversation_ref)

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        known = await self.core.identity_by_email(PLATFORM, email)
        reference = known.conversation_ref if known is not None else None
        if known is None or not reference:
            raise Unreachable(f"{email} has not installed pimbot in Teams")
        service_url = str(reference.get("serviceUrl") or "")
        if not service_url:
            raise Unreachable(f"{email}'s Teams conversation reference is incomplete")
        conversation = str((reference.get("conversation") or {}).get("id") or "")
        if not conversation:
            conversation = await self._open_chat(known, reference)
        content = await self.draw(card, known.user_id)
        try:
            activity_id = await self.connector.send(
                service_url, conversation, message_activity(content, card.fallback_text))
        except ConversationGone as exc:
            raise Unreachable(f"Teams refused a message to {email} ({exc.status}): "
                              "pimbot was probably uninstalled") from exc
        await self._keep(card, conversation, activity_id, service_url, content)
        return SentMessage(PLATFORM, {"service_url": service_url, "conversation": conversation,
                                      "activity": activity_id, "user": known.user_id})

    async def send_to_channel(self, channel: str, card: Card) -> SentMessage:
        place = await self.store.place(channel)
        if place is not None and place.removed:
            raise Unreachable(f"pimbot was removed from the team of channel {channel}")
        place = place or await self.store.any_place(self.settings.tenant_ids)
        if place is None:
            raise Unreachable(f"pimbot has not been added to a team with channel {channel}")
        content = await self.draw(card)
        parameters: dict[str, Any] = {
            "isGroup": True,
            "channelData": {"channel": {"id": channel}, "tenant": {"id": place.tenant_id}},
            "tenantId": place.tenant_id,
            "activity": message_activity(content, card.fallback_text),
        }
        if self.settings.app_id:
            parameters["bot"] = {"id": f"28:{self.settings.app_id}"}
        try:
            answer = await self.connector.create_conversation(place.service_url, parameters)
        except ConversationGone as exc:
            raise Unreachable(f"Teams refused a post to {channel} ({exc.status})") from exc
        conversation = str(answer.get("id") or channel)
        activity_id = str(answer.get("activityId") or "")
        await self._keep(card, conversation, activity_id, place.service_url, content)
        return SentMessage(PLATFORM, {"service_url": place.service_url,
                                      "conversation": conversation, "activity": activity_id})

    async def update(self, sent: SentMessage, card: Card) -> None:
        ref = sent.ref
        if not ref.get("activity"):
            return
        content = await self.draw(card, ref.get("user", ""))
        await self.connector.update(ref["service_url"], ref["conversation"], ref["activity"],
                                    message_activity(content, card.fallback_text))
        await self._keep(card, ref["conversation"], ref["activity"], ref["service_url"], content)

    async def delete(self, sent: SentMessage) -> None:
        """Delete a message pimbot sent (an MFA enrolment card, QR code and all); one that
        is already gone (404) counts as deleted, anything else raises so the job retries."""
        ref = sent.ref
        if not ref.get("activity"):
            return
        try:
            await self.connector.delete(ref["service_url"], ref["conversation"], ref["activity"])
        except ConversationGone as exc:
            if exc.status != 404:
                raise
        log.info("Teams message deleted")

    async def reply(self, inbound: Inbound, reply: Reply) -> None:
        """Answer the person who wrote. In their personal chat: there, in the thread of their
        message. In a channel or group chat, where everyone reads the thread (Teams has no
        message for one reader, as Slack's ephemeral ones are): in their personal chat,
        opened if need be, and the thread hears only that pimbot answered there."""
        if not reply.text and reply.card is None and reply.form is None:
            return
        if not inbound.personal:
            await self._reply_privately(inbound, reply)
            return
        content, text = await self._reply_content(reply, inbound.user_id)
        activity_id = await self.connector.send(inbound.service_url, inbound.conversation_id,
                                                message_activity(content, text),
                                                reply_to=str(inbound.activity.id or ""))
        await self._keep_reply(reply, inbound.conversation_id, activity_id,
                               inbound.service_url, content)

    async def _reply_privately(self, inbound: Inbound, reply: Reply) -> None:
        note = ANSWERED_PRIVATELY
        try:
            known = await self.core.identity(PLATFORM, inbound.user_id)
            reference = known.conversation_ref if known is not None else None
            service_url = str((reference or {}).get("serviceUrl") or "")
            if known is None or reference is None or not service_url:
                raise Unreachable("no reference to open a personal chat with")
            conversation = str((reference.get("conversation") or {}).get("id") or "")
            if not conversation:
                conversation = await self._open_chat(known, reference)
            content, text = await self._reply_content(reply, known.user_id)
            try:
                activity_id = await self.connector.send(service_url, conversation,
                                                        message_activity(content, text))
            except ConversationGone as exc:
                raise Unreachable(f"Teams refused the personal chat ({exc.status})") from exc
            await self._keep_reply(reply, conversation, activity_id, service_url, content)
        except Unreachable as exc:
            log.info("Teams: a channel command's answer could not go to a personal chat (%s)",
                     exc)
            note = NOT_ANSWERED_PRIVATELY
        await self.connector.send(inbound.service_url, inbound.conversation_id,
                                  message_activity(None, note),
                                  reply_to=str(inbound.activity.id or ""))

    async def _reply_content(self, reply: Reply, reader: str) -> tuple[Element | None, str]:
        """The card (None: plain text) and text of a reply read in ``reader``'s personal chat."""
        if reply.form is None and reply.card is not None and reply.card.deciders_only:
            drawn = await self.draw(reply.card, reader)
            drawn["body"] = text_blocks(reply.text) + drawn["body"]
            content: Element | None = drawn
        else:
            content = render_reply_card(reply, (reader,) if _has_buttons(reply) else ())
        return content, reply.text or (reply.card.fallback_text if reply.card is not None
                                       else "")

    async def _keep_reply(self, reply: Reply, conversation: str, activity_id: str,
                          service_url: str, content: Element | None) -> None:
        secret = reply.card is not None and reply.card.image_png is not None
        if content is not None and activity_id and not secret:
            await self.store.save_card(conversation, activity_id, service_url, content)

    async def _open_chat(self, known: PlatformIdentity, reference: dict[str, Any]) -> str:
        """A personal chat with someone pimbot has only seen in a channel (Teams allows it
        while pimbot is installed in a team of theirs); remembered once opened."""
        tenant = str((reference.get("conversation") or {}).get("tenantId") or "")
        parameters = {"isGroup": False, "members": [{"id": known.user_id}],
                      "bot": reference.get("bot") or {}, "tenantId": tenant,
                      "channelData": {"tenant": {"id": tenant}}}
        try:
            answer = await self.connector.create_conversation(str(reference["serviceUrl"]),
                                                              parameters)
        except ConversationGone as exc:
            raise Unreachable(f"Teams would not open a chat with {known.email} "
                              f"({exc.status}): pimbot is not installed for them") from exc
        conversation = str(answer.get("id") or "")
        if not conversation:
            raise Unreachable(f"Teams opened no chat with {known.email}")
        opened = {**reference, "conversation": {
            "id": conversation, "tenantId": tenant, "conversationType": "personal"}}
        await self.core.remember_identity(PLATFORM, known.user_id, known.email,
                                          known.display_name, opened)
        return conversation

    async def draw(self, card: Card, reader: str = "") -> Element:
        """The Adaptive Card for a message to ``reader`` (a Teams user id; "" for a
        channel). A card whose buttons are for its request's deciders is sent as its status
        (no buttons), refreshed for the deciders the core names who have a Teams account:
        Teams asks pimbot for their own version when they look (``handlers``)."""
        if card.deciders_only is None or not card.actions:
            return render_card(card, self._refresh_for(card, reader))
        ids = await self.decider_ids(card.deciders_only.request_id)
        if reader:
            ids = [reader] if reader in ids else []
        status = replace(card, actions=())
        return render_card(status, refresh=decider_refresh(card, ids))

    async def decider_ids(self, request_id: str) -> list[str]:
        """The Teams ids of the people the core says may decide the request (someone known
        only by email, never seen in Teams, is not listed: they decide elsewhere)."""
        ids: list[str] = []
        for email in await self.core.deciders(request_id):
            known = await self.core.identity_by_email(PLATFORM, email)
            if known is not None and known.user_id:
                ids.append(known.user_id)
        return ids

    def _refresh_for(self, card: Card, user_id: str) -> tuple[str, ...]:
        """The person a card with buttons is for gets it refreshed in place (Action.Execute)."""
        return (user_id,) if card.actions and user_id else ()

    async def _keep(self, card: Card, conversation: str, activity_id: str, service_url: str,
                    content: Element) -> None:
        if activity_id and card.image_png is None:  # a QR code holds a secret: never stored
            await self.store.save_card(conversation, activity_id, service_url, content)


def _has_buttons(reply: Reply) -> bool:
    """A card with buttons (a form is not refreshed: that would clear what was typed)."""
    return reply.form is None and reply.card is not None and bool(reply.card.actions)
