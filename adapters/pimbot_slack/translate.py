"""Slack payloads → what the core takes: command text, ActionIds, form inputs, form context.

Nothing here decides anything; it only reads Slack's shapes (see ../shared/fixtures).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pimbot.ui.cards import ActionId

ACTION_PREFIX = "pim_"
DM_CHANNEL_NAME = "directmessage"  # what Slack sends as channel_name in a direct message
MAX_METADATA = 3000
MAX_MENTIONS = 5  # distinct people one command may name (each is a users.info call)
# <@U123>, <@U123|name>, <@W123> (Enterprise Grid)
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class FormContext:
    """What a modal carries in ``private_metadata``: the form's value and where to answer."""

    value: str = ""
    response_url: str = ""


def parse_action_id(action_id: str) -> ActionId | None:
    """``pim_approve`` or ``pim_approve:2`` (a repeated button in one card) → ActionId."""
    base = action_id.split(":", 1)[0]
    try:
        return ActionId(base)
    except ValueError:
        return None


def unescape(text: str) -> str:
    """Slack sends ``&``, ``<``, ``>`` typed by people as entities; give the core the text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class TooManyMentions(ValueError):
    """A command names more people than any command takes; nobody was looked up."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"That command names {count} people; pimbot reads at most {MAX_MENTIONS} "
            f"mentions in one command (no command takes more than one person; try: "
            f"/pim assign @person ROLE eligible)")
        self.count = count


async def command_text(text: str, email_of: Callable[[str], Awaitable[str | None]]) -> str:
    """Slash command text for the grammar: user mentions become emails where Slack knows them.

    Each distinct mention is one ``users.info`` call at most, so a command naming more than
    ``MAX_MENTIONS`` distinct people is refused (TooManyMentions) before any is looked up."""
    mentions = {match.group(0): match.group(1) for match in USER_MENTION.finditer(text)}
    if len(set(mentions.values())) > MAX_MENTIONS:
        raise TooManyMentions(len(set(mentions.values())))
    replacements: dict[str, str] = {}
    for mention, user_id in mentions.items():
        email = await email_of(user_id)
        if email:
            replacements[mention] = email
    for mention, email in replacements.items():
        text = text.replace(mention, email)
    return unescape(text).strip()


def is_direct_message(channel_id: str, channel_name: str = "") -> bool:
    """A DM (``D…`` channel id, or ``channel_name`` ``directmessage``), never a channel."""
    return channel_id.startswith("D") or channel_name == DM_CHANNEL_NAME


def action_in_direct_message(body: Mapping[str, Any]) -> bool:
    """A button pressed in the App Home or on a message in a DM (not in a channel)."""
    if (body.get("view") or {}).get("type") == "home":
        return True
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    channel_id = str(channel.get("id") or container.get("channel_id") or "")
    return is_direct_message(channel_id, str(channel.get("name") or ""))


def view_inputs(view: Mapping[str, Any]) -> dict[str, str]:
    """A submitted modal's values: input block id (the Form input's name) → text."""
    values: dict[str, str] = {}
    state = (view.get("state") or {}).get("values") or {}
    for block_id, elements in state.items():
        for element in (elements or {}).values():
            values[block_id] = _element_value(element or {})
    return values


def _element_value(element: Mapping[str, Any]) -> str:
    kind = element.get("type")
    if kind in {"static_select", "external_select", "radio_buttons"}:
        selected = element.get("selected_option") or {}
        return str(selected.get("value") or "")
    if kind == "users_select":
        return str(element.get("selected_user") or "")
    return str(element.get("value") or "")


def form_metadata(value: str, response_url: str = "") -> str:
    """``private_metadata`` JSON within Slack's 3000 characters (the value always fits)."""
    data = {"value": value[:2000], "response_url": response_url}
    encoded = json.dumps(data, separators=(",", ":"))
    if len(encoded) > MAX_METADATA:
        encoded = json.dumps({"value": value[:2000]}, separators=(",", ":"))
    return encoded


def read_metadata(raw: str) -> FormContext:
    try:
        data = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):  # not JSON, or nested past what Python parses
        return FormContext()
    if not isinstance(data, dict):
        return FormContext()
    return FormContext(str(data.get("value", "")), str(data.get("response_url", "")))


OBJECT_FIELDS = ("user", "team", "view", "event", "channel", "container", "enterprise")


def is_slack_shaped(payload: Mapping[str, Any]) -> bool:
    """The fields pimbot reads have Slack's types: each of ``OBJECT_FIELDS`` an object (or a
    plain id, or absent), ``actions`` a list of objects. A signed body of another shape is
    refused (400), never read into an AttributeError."""
    for name in OBJECT_FIELDS:
        value = payload.get(name)
        if value is not None and not isinstance(value, Mapping | str):
            return False
    actions = payload.get("actions")
    if actions is None:
        return True
    return isinstance(actions, list) and all(isinstance(a, Mapping) for a in actions)


@dataclass(frozen=True)
class Delivery:
    """What makes one inbound request unique, so that it is acted on once.

    Slack makes these unique per request: a slash command's ``trigger_id``; a button's
    ``action_ts`` (with who pressed which action); a modal submit's ``trigger_id`` (not the
    view's ``id`` + ``hash``: a submit answered with field errors leaves the view, and its
    hash, as it was, and the corrected submit must still count); an event's ``event_id``
    (the same on every Events API retry, ``X-Slack-Retry-Num``).
    """

    kind: str  # command | block_actions | view_submission | event | another payload type
    key: str  # "" when the payload carries nothing unique (none of the kinds pimbot handles)
    user_id: str = ""

    @property
    def retried_by_slack(self) -> bool:
        """Slack retries an event it got no 200 for (``X-Slack-Retry-Num``), never a slash
        command, a click or a submit: only an event's completion needs recording."""
        return self.kind == "event"


def delivery_of(body: Mapping[str, Any]) -> Delivery:
    if "command" in body:  # a slash command is a form with command, text, trigger_id
        return Delivery("command", _tagged("trigger", body.get("trigger_id")),
                        str(body.get("user_id") or ""))
    kind = str(body.get("type") or "")
    if kind == "event_callback":
        event = body.get("event")
        user = event.get("user") if isinstance(event, Mapping) else None
        return Delivery("event", _tagged("event", body.get("event_id")),
                        user if isinstance(user, str) else "")
    user = body.get("user")
    user_id = str(user.get("id") or "") if isinstance(user, Mapping) else ""
    key = _tagged("trigger", body.get("trigger_id"))
    if kind == "block_actions":
        action = (body.get("actions") or [{}])[0]
        if action.get("action_ts"):
            key = f"action:{user_id}:{action.get('action_id', '')}:{action['action_ts']}"
    if not key:
        view = body.get("view")
        if isinstance(view, Mapping) and view.get("id") and view.get("hash"):
            key = f"view:{view['id']}:{view['hash']}"
    return Delivery(kind or "unknown", key, user_id)


def _tagged(tag: str, value: Any) -> str:
    return f"{tag}:{value}" if value else ""
