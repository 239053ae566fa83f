"""Bot Framework activities → what the core takes: command text, ActionIds, form inputs, and
the conversation reference that lets pimbot message a person later.

Nothing here decides anything; it only reads Teams' shapes (see ../shared/fixtures). The
tenant is read from ``channelData.tenant.id`` (botbuilder-python drops
``conversation.tenantId`` when it deserialises), falling back to the raw JSON.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from pimbot.ui.cards import ActionId
from pimbot_teams.render import DATA_KEY, REFRESH_VERB, action_of

CHANNEL_ID = "msteams"
PERSONAL = "personal"
_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_VALUE_KEYS = frozenset({DATA_KEY, "requestId", "action"})


@dataclass(frozen=True)
class Inbound:
    """One activity as pimbot reads it."""

    activity: Any  # botbuilder.schema.Activity
    raw: dict[str, Any]
    type: str
    name: str
    service_url: str
    channel_id: str
    tenant_id: str
    conversation_id: str
    conversation_type: str
    user_id: str
    user_name: str
    bot_id: str
    reply_to_id: str
    team_id: str = ""
    teams_channel_id: str = ""
    team_name: str = ""

    @property
    def personal(self) -> bool:
        return self.conversation_type == PERSONAL

    @property
    def lookup_conversation(self) -> str:
        """Where to look a member up: the team for channel messages, else the chat."""
        return self.team_id or self.conversation_id


@dataclass(frozen=True)
class Press:
    """A button press or a submitted form (``Action.Execute`` invoke or ``Action.Submit``)."""

    verb: str
    action: ActionId | None
    value: str
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def refresh(self) -> bool:
        return self.verb == REFRESH_VERB


def read_activity(body: dict[str, Any]) -> Inbound:
    """Raises ``ValueError`` for a body that is not an activity."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ValueError("not an activity: no type")
    activity = Activity().deserialize(body)
    channel_data = _obj(body.get("channelData"))
    conversation = _obj(body.get("conversation"))
    sender = _obj(body.get("from"))
    team = _obj(channel_data.get("team"))
    channel = _obj(channel_data.get("channel"))
    tenant = str(_obj(channel_data.get("tenant")).get("id") or conversation.get("tenantId")
                 or "")
    return Inbound(
        activity=activity, raw=body, type=str(body["type"]), name=str(body.get("name") or ""),
        service_url=str(body.get("serviceUrl") or ""), channel_id=str(body.get("channelId") or ""),
        tenant_id=tenant.lower(), conversation_id=str(conversation.get("id") or ""),
        conversation_type=str(conversation.get("conversationType") or PERSONAL),
        user_id=str(sender.get("id") or ""), user_name=str(sender.get("name") or ""),
        bot_id=str(_obj(body.get("recipient")).get("id") or ""),
        reply_to_id=str(body.get("replyToId") or ""),
        team_id=str(team.get("id") or channel_data.get("teamsTeamId") or ""),
        teams_channel_id=str(channel.get("id") or channel_data.get("teamsChannelId") or ""),
        team_name=str(team.get("name") or ""),
    )


@dataclass(frozen=True)
class UserMention:
    """A person mentioned in a message: the ``<at>…</at>`` text and who Teams says it is."""

    text: str
    user_id: str


def user_mentions(inbound: Inbound) -> list[UserMention]:
    """The ``mention`` entities of the activity that name a person (pimbot's own left out),
    in the order Teams lists them (the order of the text)."""
    found = []
    for entity in inbound.raw.get("entities") or []:
        entity = _obj(entity)
        user_id = str(_obj(entity.get("mentioned")).get("id") or "")
        if entity.get("type") != "mention" or not user_id or user_id == inbound.bot_id:
            continue
        if user_id.startswith("29:"):
            found.append(UserMention(str(entity.get("text") or ""), user_id))
    return found


def command_text(inbound: Inbound, emails: Sequence[tuple[UserMention, str]] = ()) -> str:
    """The message text for the grammar: pimbot's own mention removed, HTML entities
    decoded, and each person mentioned as their email (``emails``: the mention and the email
    Teams' member lookup gave for its user id; never one read from the name shown). A mention
    without an email stays ``<at>Name</at>``, which the grammar reads as a display name, and
    a display name never picks a person."""
    activity = inbound.activity
    text = str(activity.text or "")
    if inbound.bot_id:
        text = str(TurnContext.remove_mention_text(activity, inbound.bot_id) or text)
    pending = [(mention.text, email) for mention, email in emails if mention.text]
    parts: list[str] = []
    last = 0
    for found in _AT.finditer(text):
        parts.append(_plain(text[last:found.start()]))
        last = found.end()
        name = _plain(found.group(1))
        match = next((i for i, (said, _) in enumerate(pending) if said == found.group(0)), None)
        if match is not None:
            parts.append(pending.pop(match)[1])
        else:
            parts.append(f"<at>{name}</at>" if name else "")
    parts.append(_plain(text[last:]))
    return "".join(parts).strip()


def _plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text)).replace("\xa0", " ")


def read_invoke(inbound: Inbound) -> Press | None:
    """An ``adaptiveCard/action`` invoke's ``Action.Execute`` (None if it is not one)."""
    value = _obj(inbound.raw.get("value"))
    action = _obj(value.get("action"))
    if action.get("type") != "Action.Execute":
        return None
    return _press(str(action.get("verb") or ""), action.get("data"))


def read_submit(inbound: Inbound) -> Press | None:
    """An ``Action.Submit`` (the fallback of old clients): a message whose ``value`` names
    the action."""
    value = inbound.raw.get("value")
    if not isinstance(value, dict) or not isinstance(value.get("action"), str):
        return None
    return _press(str(value["action"]), value)


def _press(verb: str, data: Any) -> Press:
    values = data if isinstance(data, dict) else {}
    object_id = str(values.get(DATA_KEY) or values.get("requestId") or "")
    inputs = {str(k): _text(v) for k, v in values.items() if k not in _VALUE_KEYS}
    return Press(verb, action_of(verb), object_id, inputs)


def conversation_ref(inbound: Inbound) -> dict[str, Any]:
    """What pimbot needs to message this conversation later (stored in the database)."""
    reference = TurnContext.get_conversation_reference(inbound.activity).serialize()
    reference.setdefault("conversation", {})["tenantId"] = inbound.tenant_id
    reference["conversation"]["conversationType"] = inbound.conversation_type
    reference.pop("activityId", None)
    return dict(reference)


def reach_ref(inbound: Inbound) -> dict[str, Any]:
    """What is known, from a channel, to open a personal chat with the sender later: their id,
    the bot, the tenant and its service URL (no conversation id yet)."""
    return {"serviceUrl": inbound.service_url, "channelId": inbound.channel_id,
            "user": {"id": inbound.user_id, "name": inbound.user_name},
            "bot": {"id": inbound.bot_id},
            "conversation": {"tenantId": inbound.tenant_id}}


def added_members(inbound: Inbound) -> list[str]:
    return [str(_obj(m).get("id") or "") for m in inbound.raw.get("membersAdded") or []]


def removed_members(inbound: Inbound) -> list[str]:
    return [str(_obj(m).get("id") or "") for m in inbound.raw.get("membersRemoved") or []]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
