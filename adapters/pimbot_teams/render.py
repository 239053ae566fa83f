"""Neutral Card / Form / Reply → Adaptive Cards 1.5 with ``Action.Execute``, and the bodies of
``adaptiveCard/action`` invoke responses.

Pure functions. Buttons are ``Action.Execute`` with the ActionId as a camel-case verb
(``pim_approve`` → ``pimApprove``) and only the object id in ``data`` (``{"id": …}``), each
with an ``Action.Submit`` fallback for clients older than 1.4. Text a person typed can hold
markdown (a ``[link](…)`` in a reason), so every piece of text is a ``TextRun`` in a
``RichTextBlock``, which Adaptive Cards never read as markdown; the one TextBlock kind is a
time (label and ISO time only), drawn with ``DATE()``/``TIME()`` in each reader's own zone. A
card's image (an MFA enrolment QR code) is a ``data:`` URI inside the card, so it never
leaves the message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from pimbot.ui.cards import (
    ActionId,
    Button,
    ButtonStyle,
    Card,
    Field,
    FieldValue,
    Form,
    Input,
    InputKind,
    Mention,
    Reply,
    Time,
    Tone,
    UserText,
)
from pimbot.ui.quoting import flatten, quote

Element = dict[str, Any]

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MESSAGE_CONTENT_TYPE = "application/vnd.microsoft.activity.message"
ERROR_CONTENT_TYPE = "application/vnd.microsoft.error"
REFRESH_VERB = "pimRefresh"
DATA_KEY = "id"
VIEW_KEY = "view"  # in a decider card's refresh data: which view to draw for the reader
MAX_ACTIONS = 6  # what Teams draws in a card's action bar
MAX_REFRESH_USERS = 60
MAX_TEXT = 3000
MAX_FIELDS = 30
MAX_CHOICES = 100
CODE_PATTERN = "^[0-9]{6}$"

_TONE_COLOR = {Tone.INFO: "Default", Tone.GOOD: "Good", Tone.WARNING: "Warning",
               Tone.DANGER: "Attention"}
_MARKDOWN = re.compile(r"([\\`*_\[\]~<>])")
_LINE_START = re.compile(r"^(\s*)([-+#>]|\d+\.)(\s)")


COMMAND_PREFIX = "pim "  # how people type a command to pimbot in Teams

def verb_of(action: ActionId) -> str:
    """``pim_submit_deny`` → ``pimSubmitDeny``."""
    first, *rest = action.value.split("_")
    return first + "".join(part.capitalize() for part in rest)


_VERBS = {verb_of(a): a for a in ActionId}


def action_of(verb: str) -> ActionId | None:
    return _VERBS.get(verb)


def escape(text: str) -> str:
    """Markdown characters shown as themselves, for the one TextBlock (a time's label)."""
    lines = []
    for line in text.split("\n"):
        line = _MARKDOWN.sub(r"\\\1", line)
        lines.append(_LINE_START.sub(r"\1\\\2\3", line))
    return "\n".join(lines)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_value(value: FieldValue) -> str:
    """A field's value as text (a person's own words as a quotation, see ui.quoting)."""
    match value:
        case Mention(email=email, name=name):
            return f"{flatten(name)} ({email})" if name and name != email else email
        case Time(at=at):
            return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        case UserText(text=text):
            return quote(text)
        case str():
            return value


def run(text: str, **style: Any) -> Element:
    """A TextRun: shown exactly as written (RichTextBlock knows no markdown)."""
    return {"type": "TextRun", "text": clip(text), **style}


def rich(*runs: Element, **block: Any) -> Element:
    return {"type": "RichTextBlock", "inlines": list(runs), **block}


def text_blocks(text: str, **style: Any) -> list[Element]:
    """One RichTextBlock per line (so lines stay lines), its text never interpreted."""
    blocks: list[Element] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        blocks.append(rich(run(line, **style), **({"spacing": "None"} if blocks else {})))
    return blocks


def field_block(field: Field, first: bool) -> Element:
    """``Label: value``. A time is a TextBlock with DATE()/TIME(), so each reader sees it in
    their own time zone (only pimbot's words are in it: the label, the ISO time)."""
    spacing = {} if first else {"spacing": "None"}
    if isinstance(field.value, Time):
        at = field.value.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = f"**{escape(field.label)}:** {{{{DATE({at}, SHORT)}}}} {{{{TIME({at})}}}}"
        return {"type": "TextBlock", "text": text, "wrap": True, **spacing}
    style = {"italic": True} if isinstance(field.value, UserText) else {}
    return rich(run(f"{field.label}: ", weight="Bolder"), run(render_value(field.value), **style),
                **spacing)


def field_blocks(fields: Sequence[Field]) -> list[Element]:
    return [field_block(f, i == 0) for i, f in enumerate(fields[:MAX_FIELDS])]


def image(card: Card) -> list[Element]:
    if card.image_png is None:
        return []
    data = base64.b64encode(card.image_png).decode("ascii")
    return [{"type": "Image", "url": f"data:image/png;base64,{data}",
             "altText": card.image_alt or "image", "size": "Medium"}]


def card_body(card: Card) -> list[Element]:
    body: list[Element] = [rich(run(clip(card.title, 400), weight="Bolder", size="Medium",
                                    color=_TONE_COLOR[card.tone]))]
    body.extend(text_blocks(card.text))
    body.extend(field_blocks(card.fields))
    body.extend(image(card))
    body.extend(text_blocks(card.context, isSubtle=True, size="Small"))
    return body


def execute(title: str, verb: str, value: str, style: ButtonStyle = ButtonStyle.DEFAULT
            ) -> Element:
    action: Element = {
        "type": "Action.Execute", "title": clip(title, 100), "verb": verb,
        "data": {DATA_KEY: value},
        "fallback": {"type": "Action.Submit", "title": clip(title, 100),
                     "data": {"action": verb, DATA_KEY: value}},
    }
    if style is ButtonStyle.PRIMARY:
        action["style"] = "positive"
    elif style is ButtonStyle.DANGER:
        action["style"] = "destructive"
    return action


def button(b: Button) -> Element:
    """An ``Action.Execute``; one that asks first (``b.confirm``) is an ``Action.ShowCard``
    whose card holds the question and the ``Action.Execute`` that goes ahead (Adaptive Cards
    have no confirmation dialog; pressing the button again folds the question away)."""
    if b.confirm is None:
        return execute(b.label, verb_of(b.action), b.value, b.style)
    asked = b.confirm
    question: Element = {
        "type": "AdaptiveCard",
        "body": [rich(run(clip(asked.title, 400), weight="Bolder")), *text_blocks(asked.text)],
        "actions": [execute(asked.yes, verb_of(b.action), b.value, ButtonStyle.DANGER)],
    }
    shown: Element = {"type": "Action.ShowCard", "title": clip(b.label, 100), "card": question}
    if b.style is ButtonStyle.DANGER:
        shown["style"] = "destructive"
    return shown


def refresh_of(user_ids: Sequence[str], data: dict[str, str] | None = None) -> Element | None:
    """``refresh``: Teams sends ``user_ids`` (at most 60) an ``adaptiveCard/action`` invoke
    (``trigger: automatic``) when they look at the card, and shows them the card it returns;
    everyone else sees the card as sent. ``data`` goes back in the invoke."""
    if not user_ids:
        return None
    action: Element = {"type": "Action.Execute", "title": "Refresh", "verb": REFRESH_VERB}
    if data:
        action["data"] = dict(data)
    return {"action": action, "userIds": list(dict.fromkeys(user_ids))[:MAX_REFRESH_USERS]}


def adaptive_card(body: list[Element], actions: list[Element],
                  refresh_user_ids: Sequence[str] = (), fallback_text: str = "",
                  refresh: Element | None = None) -> Element:
    card: Element = {"$schema": SCHEMA, "type": "AdaptiveCard", "version": VERSION,
                     "body": body}
    if actions:
        card["actions"] = actions[:MAX_ACTIONS]
    refresh = refresh or refresh_of(refresh_user_ids)
    if refresh:
        card["refresh"] = refresh
    if fallback_text:
        card["fallbackText"] = clip(fallback_text, 400)
    return card


def render_card(card: Card, refresh_user_ids: Sequence[str] = (),
                refresh: Element | None = None) -> Element:
    """A neutral card as an Adaptive Card; ``refresh_user_ids`` get it refreshed in place
    (or ``refresh``, a whole ``refresh_of``)."""
    return adaptive_card(card_body(card), [button(b) for b in card.actions], refresh_user_ids,
                         card.fallback_text, refresh)


def decider_refresh(card: Card, user_ids: Sequence[str]) -> Element | None:
    """The refresh of a card whose buttons are for its request's deciders (``user_ids``):
    the invoke names the request and the view, so the core can draw it for the reader."""
    only = card.deciders_only
    if only is None:
        return None
    return refresh_of(user_ids, {DATA_KEY: only.request_id, VIEW_KEY: only.view})


def input_element(item: Input) -> Element:
    element: Element = {"id": item.name, "label": clip(item.label, 200),
                        "isRequired": item.required}
    if item.kind is InputKind.SELECT and item.choices:
        element.update(type="Input.ChoiceSet", style="compact", choices=[
            {"title": clip(c.label, 200), "value": c.value} for c in item.choices[:MAX_CHOICES]])
        if item.initial and any(c.value == item.initial for c in item.choices):
            element["value"] = item.initial
    else:
        element["type"] = "Input.Text"
        if item.kind is InputKind.CODE:
            element.update(regex=CODE_PATTERN, maxLength=6, style="tel",
                           errorMessage="Enter the 6-digit code from your authenticator app")
        else:
            element["maxLength"] = max(1, min(item.max_length, MAX_TEXT))
            if item.initial:
                element["value"] = item.initial[: element["maxLength"]]
        if item.kind is InputKind.MULTILINE:
            element["isMultiline"] = True
    if item.placeholder:
        element["placeholder"] = clip(item.placeholder, 200)
    if item.required and "errorMessage" not in element:
        element["errorMessage"] = f"{clip(item.label, 100)} is needed"
    return element


def render_form(form: Form, card: Card | None = None, intro: str = "",
                refresh_user_ids: Sequence[str] = ()) -> Element:
    """A form as a card (after ``card``'s own content, when the reply had one)."""
    body: list[Element] = card_body(card) if card is not None else []
    body.extend(text_blocks(intro))
    body.append(rich(run(clip(form.title, 200), weight="Bolder"),
                     **({"separator": True} if card is not None else {})))
    body.extend(text_blocks(form.text))
    body.extend(input_element(item) for item in form.inputs)
    submit = execute(form.submit_label, verb_of(form.submit), form.value, ButtonStyle.PRIMARY)
    return adaptive_card(body, [submit], refresh_user_ids, form.title)


def render_reply_card(reply: Reply, refresh_user_ids: Sequence[str] = ()) -> Element | None:
    """The Adaptive Card a reply needs (None when plain text says it all)."""
    if reply.form is not None:
        return render_form(reply.form, reply.card, reply.text, refresh_user_ids)
    if reply.card is not None:
        card = render_card(reply.card, refresh_user_ids)
        card["body"] = text_blocks(reply.text) + card["body"]
        return card
    return None


def outcome_card(shown: Element | None, text: str, ok: bool) -> Element:
    """The card a button press answers with: the card as it was shown, without its buttons
    and inputs, with the outcome below (the core's redraw of every copy follows)."""
    body = [e for e in (shown or {}).get("body") or []
            if not str(e.get("type", "")).startswith("Input.")]
    lines = text_blocks(text or "Done.", **({} if ok else {"color": "Attention"}))
    if body and lines:
        lines[0]["separator"] = True
        lines[0].pop("spacing", None)
    refresh = (shown or {}).get("refresh") or None
    return adaptive_card(body + lines, [], refresh=refresh)


def message_activity(card: Element | None = None, text: str = "") -> dict[str, Any]:
    """A message activity: an Adaptive Card attachment, or plain text."""
    activity: dict[str, Any] = {"type": "message"}
    if card is not None:
        activity["attachments"] = [{"contentType": CARD_CONTENT_TYPE, "content": card}]
        if text:
            activity["summary"] = clip(text.replace("\n", " "), 200)
    else:
        activity.update(text=clip(text or "Done.", 20_000), textFormat="plain")
    return activity


def invoke_card(card: Element) -> dict[str, Any]:
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}


def invoke_message(text: str) -> dict[str, Any]:
    return {"statusCode": 200, "type": MESSAGE_CONTENT_TYPE, "value": clip(text, 2000)}


def invoke_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "type": ERROR_CONTENT_TYPE,
            "value": {"code": code, "message": clip(message, 500)}}
