"""Neutral Card / Form / Reply → Block Kit messages, modals and the Home tab.

Pure functions. Every piece of text is escaped (``&``, ``<``, ``>``) so text a person typed —
a reason with ``<!channel>``, ``<@U…>`` or ``<http://evil|link>`` — can neither ping nor forge a
link; only ``Mention`` and ``Time`` field values become Slack's own ``<@U…>`` / ``<!date^…>``.

Text a person supplied (``UserText`` fields: reason, ticket, denial reason) cannot pass for
pimbot's own fields either: pimbot's fields form one grid of bold labels (mrkdwn), and what
people said follows in a section of its own, each label beside its value, the value as
``plain_text`` (no formatting, no emoji codes) quoted on one line with its links broken
(``pimbot.ui.quoting``). A display name shown in mrkdwn (a person Slack cannot mention) has
its formatting marks (``* _ ~ ` ``) swapped for look-alikes.
Everything is clipped to Slack's limits (blocks per surface, text lengths, elements per block).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pimbot.ui.cards import (
    Button,
    ButtonStyle,
    Card,
    Confirm,
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
from pimbot.ui.quoting import CLOSE, OPEN, defang, flatten, quote

Block = dict[str, Any]
Mentions = Mapping[str, str]  # email → Slack user id

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_BUTTON_TEXT = 75
MAX_CONFIRM_TITLE, MAX_CONFIRM_TEXT, MAX_CONFIRM_BUTTON = 100, 300, 30
MAX_ACTIONS = 25
MAX_CONTEXT_TEXT = 3000
MAX_MESSAGE_TEXT = 3000
MAX_MODAL_TITLE = 24
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_LABEL = 2000
MAX_INPUT_LENGTH = 3000
CODE_LENGTH = 6

TONE_EMOJI: dict[Tone, str] = {
    Tone.INFO: "",
    Tone.GOOD: ":white_check_mark: ",
    Tone.WARNING: ":warning: ",
    Tone.DANGER: ":rotating_light: ",
}


MRKDWN_MARKS = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
# a person's words quoted inside the core's text (``ui.quoting.quote``: one line, and no
# closing mark of its own), e.g. a reason in the audit answer
QUOTATION = re.compile(f"{OPEN}[^{CLOSE}\n]*{CLOSE}")


COMMAND_PREFIX = "/pim "  # how people type a command in Slack

def escape(text: str) -> str:
    """Slack's three control characters, so user text is shown and never interpreted."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text: str) -> str:
    """A person's text inside mrkdwn: one line, escaped, no link, no formatting marks."""
    return escape(defang(flatten(text))).translate(MRKDWN_MARKS)


def fit(text: str, limit: int) -> str:
    """Escape ``text`` and clip it to ``limit`` characters without cutting an entity."""
    escaped = escape(text)
    return clip_escaped(escaped, limit)


def clip_escaped(escaped: str, limit: int) -> str:
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def slack_date(at: datetime) -> str:
    """``<!date^…>``: each reader sees the time in their own zone; the fallback is UTC."""
    utc = at.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def render_value(value: FieldValue, mentions: Mentions) -> str:
    match value:
        case Mention(email=email, name=name):
            user_id = mentions.get(email.lower())
            if user_id:
                return f"<@{user_id}>"
            if name and name != email:
                return f"{inert(name)} ({escape(email)})"
            return escape(email)
        case Time(at=at):
            return slack_date(at)
        case UserText(text=text):
            return inert(quote(text))
        case str():
            return escape(value)


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": fit(text, limit) or " ", "emoji": True}


def mrkdwn_section(escaped: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": escaped}}


def text_sections(text: str) -> list[Block]:
    """Plain text as mrkdwn sections of at most 3000 characters, split at line ends. The
    quotations in it (what people typed) have their formatting marks neutralised, so they
    cannot format themselves or pimbot's words beside them."""
    chunks: list[str] = []
    current = ""
    inert_quotes = QUOTATION.sub(lambda m: m.group(0).translate(MRKDWN_MARKS), escape(text))
    for line in inert_quotes.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= MAX_SECTION_TEXT:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = clip_escaped(line, MAX_SECTION_TEXT)
    if current.strip():
        chunks.append(current)
    return [mrkdwn_section(chunk) for chunk in chunks]


def field_blocks(fields: Sequence[Field], mentions: Mentions) -> list[Block]:
    """pimbot's fields as a grid, then what people said (``UserText``) in sections of their
    own: a bold label beside a ``plain_text`` quotation, never a field of the grid."""
    own = [f for f in fields if not isinstance(f.value, UserText)]
    said = [(f.label, f.value) for f in fields if isinstance(f.value, UserText)]
    texts = [
        clip_escaped(f"*{escape(f.label)}*\n{render_value(f.value, mentions)}", MAX_FIELD_TEXT)
        for f in own
    ]
    blocks: list[Block] = [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": t} for t in group]}
        for group in _groups(texts, MAX_FIELDS)
    ]
    for group in _groups(said, MAX_FIELDS // 2):
        items = [item for label, value in group for item in quoted_field(label, value)]
        blocks.append({"type": "section", "fields": items})
    return blocks


def quoted_field(label: str, said: UserText) -> list[Block]:
    """``*Label*`` beside ``“what the person wrote”`` (plain text: Slack formats nothing)."""
    return [
        {"type": "mrkdwn", "text": clip_escaped(f"*{escape(label)}*", MAX_FIELD_TEXT)},
        {"type": "plain_text", "text": fit(quote(said.text), MAX_FIELD_TEXT), "emoji": False},
    ]


def button_element(button: Button, action_id: str) -> Block:
    element: Block = {
        "type": "button",
        "action_id": action_id,
        "text": plain(button.label, MAX_BUTTON_TEXT),
        "value": button.value[:2000],
    }
    if button.style in (ButtonStyle.PRIMARY, ButtonStyle.DANGER):
        element["style"] = button.style.value
    if button.confirm is not None:  # Slack asks in its own dialog before it sends the press
        element["confirm"] = confirmation_dialog(button.confirm)
    return element


def confirmation_dialog(asked: Confirm) -> Block:
    """Block Kit's confirmation dialog object (plain text, Slack's lengths)."""
    return {"title": plain(asked.title, MAX_CONFIRM_TITLE),
            "text": plain(asked.text, MAX_CONFIRM_TEXT),
            "confirm": plain(asked.yes, MAX_CONFIRM_BUTTON),
            "deny": plain(asked.no, MAX_CONFIRM_BUTTON), "style": "danger"}


def action_blocks(buttons: Sequence[Button]) -> list[Block]:
    """Buttons in actions blocks of ≤25; a repeated action gets ``:n`` (unique per block)."""
    seen: dict[str, int] = {}
    elements: list[Block] = []
    for button in buttons:
        count = seen.get(button.action.value, 0)
        seen[button.action.value] = count + 1
        action_id = button.action.value if count == 0 else f"{button.action.value}:{count}"
        elements.append(button_element(button, action_id))
    return [{"type": "actions", "elements": group} for group in _groups(elements, MAX_ACTIONS)]


def card_blocks(card: Card, mentions: Mentions) -> list[Block]:
    blocks: list[Block] = [
        {"type": "header", "text": plain(TONE_EMOJI[card.tone] + card.title, MAX_HEADER)}
    ]
    if card.text:
        blocks.extend(text_sections(card.text))
    blocks.extend(field_blocks(card.fields, mentions))
    if card.image_text:
        code = clip_escaped(escape(card.image_text), MAX_SECTION_TEXT - 8)
        blocks.append(mrkdwn_section(f"```{code}```"))
    if card.context:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": fit(card.context, MAX_CONTEXT_TEXT)}],
            }
        )
    blocks.extend(action_blocks(card.actions))
    return blocks


def fallback_text(text: str) -> str:
    """The ``text`` every message carries (notifications, screen readers, old clients)."""
    return fit(text.replace("\n", " ").strip(), MAX_MESSAGE_TEXT) or "pimbot"


def limit_blocks(blocks: list[Block], limit: int) -> list[Block]:
    if len(blocks) <= limit:
        return blocks
    hidden = len(blocks) - (limit - 1)
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"… {hidden} more"}]}
    return [*blocks[: limit - 1], note]


def render_message(card: Card, mentions: Mentions) -> dict[str, Any]:
    """``text`` + ``blocks`` for chat.postMessage / chat.update / response_url."""
    return {
        "text": fallback_text(card.fallback_text),
        "blocks": limit_blocks(card_blocks(card, mentions), MAX_MESSAGE_BLOCKS),
    }


def render_reply(reply: Reply, mentions: Mentions) -> dict[str, Any]:
    """An answer to the person who acted (sent ephemerally by the caller)."""
    said = reply.said(COMMAND_PREFIX)
    blocks = text_sections(said) if said else []
    if reply.card is not None:
        blocks.extend(card_blocks(reply.card, mentions))
    text = said or (reply.card.fallback_text if reply.card else "Done.")
    return {"text": fallback_text(text), "blocks": limit_blocks(blocks, MAX_MESSAGE_BLOCKS)}


def render_home(cards: Sequence[Card], mentions: Mentions, intro: str = "") -> dict[str, Any]:
    """The App Home tab: the core's cards one after another, dividers between them."""
    blocks: list[Block] = [{"type": "header", "text": plain("Privileged access", MAX_HEADER)}]
    if intro:
        blocks.extend(text_sections(intro))
    for card in cards:
        blocks.append({"type": "divider"})
        blocks.extend(card_blocks(card, mentions))
    return {"type": "home", "blocks": limit_blocks(blocks, MAX_VIEW_BLOCKS)}


def render_modal(form: Form, private_metadata: str) -> dict[str, Any]:
    """A modal from a neutral Form; ``callback_id`` is the submit ActionId, blocks are inputs."""
    blocks: list[Block] = text_sections(form.text) if form.text else []
    blocks.extend(input_block(item) for item in form.inputs)
    return {
        "type": "modal",
        "callback_id": form.submit.value,
        "title": plain(form.title, MAX_MODAL_TITLE),
        "submit": plain(form.submit_label, MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
        "private_metadata": private_metadata,
        "blocks": limit_blocks(blocks, MAX_VIEW_BLOCKS),
    }


def input_block(item: Input) -> Block:
    block: Block = {
        "type": "input",
        "block_id": item.name,
        "label": plain(item.label, MAX_LABEL),
        "optional": not item.required,
        "element": input_element(item),
    }
    if item.kind is InputKind.CODE:
        block["hint"] = plain("The 6-digit code from your authenticator app", MAX_LABEL)
    return block


def input_element(item: Input) -> Block:
    if item.kind is InputKind.SELECT and item.choices:
        return select_element(item)
    element: Block = {"type": "plain_text_input", "action_id": item.name}
    if item.kind is InputKind.CODE:
        element.update(min_length=CODE_LENGTH, max_length=CODE_LENGTH)
    else:
        element["max_length"] = max(1, min(item.max_length, MAX_INPUT_LENGTH))
    if item.kind is InputKind.MULTILINE:
        element["multiline"] = True
    if item.initial and item.kind is not InputKind.CODE:
        element["initial_value"] = item.initial[: element["max_length"]]
    if item.placeholder:
        element["placeholder"] = plain(item.placeholder, 150)
    return element


def select_element(item: Input) -> Block:
    options = [
        {"text": plain(c.label, MAX_OPTION_TEXT), "value": c.value[:MAX_OPTION_VALUE]}
        for c in item.choices[:MAX_OPTIONS]
    ]
    element: Block = {"type": "static_select", "action_id": item.name, "options": options}
    initial = next((o for o in options if o["value"] == item.initial), None)
    if initial is not None:
        element["initial_option"] = initial
    element["placeholder"] = plain(item.placeholder or f"Choose {item.label.lower()}", 150)
    return element


def mention_emails(cards: Iterable[Card]) -> set[str]:
    """Emails of every ``Mention`` in these cards (to resolve to user ids before rendering)."""
    return {
        f.value.email.lower() for card in cards for f in card.fields if isinstance(f.value, Mention)
    }


def _groups(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
