"""Neutral cards, forms and replies drawn as plain text with numbered buttons.

What a person supplied (``UserText``, a display name) is shown quoted on one line, with
control characters (terminal escapes) and links made inert (``pimbot.ui.quoting``), so a
reason cannot print a line, or a field, that looks like pimbot's own.
"""

from __future__ import annotations

from datetime import UTC

from pimbot.ui.cards import (
    Card,
    Field,
    FieldValue,
    Form,
    Input,
    InputKind,
    Mention,
    Reply,
    Time,
    UserText,
)
from pimbot.ui.quoting import defang, flatten, quote

RULE_WIDTH = 60
FIELDS_PER_LINE_WIDTH = 78
INDENT = "  "


COMMAND_PREFIX = ""  # the console takes commands plain (a `pim` prefix is optional)

def header(audience: str, *, updated: bool = False) -> str:
    """``── to alice@example.com ───…`` (or ``── updated, to …``) padded to a fixed width."""
    label = f"── {'updated, ' if updated else ''}to {audience} "
    return label + "─" * max(3, RULE_WIDTH - len(label))


def render_value(value: FieldValue) -> str:
    match value:
        case Mention(email=email, name=name):
            return f"{defang(flatten(name))} <{email}>" if name and name != email else email
        case Time(at=at):
            return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        case UserText(text=text):
            return quote(text)
        case str():
            return value


def render_fields(fields: tuple[Field, ...]) -> list[str]:
    parts = [f"{f.label}: {render_value(f.value)}" for f in fields]
    one_line = "   ".join(parts)
    if len(one_line) + len(INDENT) <= FIELDS_PER_LINE_WIDTH:
        return [INDENT + one_line] if parts else []
    return [INDENT + part for part in parts]


def render_buttons(card: Card) -> str:
    return INDENT + "   ".join(f"[{i}] {b.label}" for i, b in enumerate(card.actions, start=1))


def render_card(card: Card, audience: str, *, updated: bool = False) -> str:
    """A card with who it went to, its text, its fields and its buttons numbered from 1."""
    lines = [header(audience, updated=updated), card.title]
    lines.extend(INDENT + line for line in card.text.splitlines())
    lines.extend(render_fields(card.fields))
    if card.image_text:
        lines.extend(INDENT + line for line in card.image_text.splitlines())
    elif card.image_png is not None:
        lines.append(f"{INDENT}[image: {card.image_alt or 'not shown on the console'}]")
    if card.context:
        lines.extend(INDENT + line for line in card.context.splitlines())
    if card.actions:
        lines.append(render_buttons(card))
    return "\n".join(lines)


def render_update(card: Card, audience: str) -> str:
    """A redrawn card in one line: who saw it, its new title, its first line of text."""
    first = card.text.splitlines()[0] if card.text else ""
    buttons = f" {render_buttons(card).strip()}" if card.actions else ""
    return f"  ↻ updated for {audience}: {card.title}{' — ' + first if first else ''}{buttons}"


def render_earlier_update(card: Card, audience: str) -> str:
    """A card printed by an earlier run of the console, redrawn now: one line that says so,
    without buttons (``click`` presses only cards this run printed)."""
    first = card.text.splitlines()[0] if card.text else ""
    to = f" for {audience}" if audience else ""
    return f"  ↻ updated{to} (a card from an earlier run): {card.title}" + \
        (f" — {first}" if first else "")


def render_deleted(card: Card, audience: str) -> str:
    """A deleted card in one line (its content is not repeated)."""
    return f"  ✗ deleted for {audience}: {card.title}"


def describe_input(item: Input) -> str:
    if item.kind is InputKind.SELECT and item.choices:
        needed = "one of " + ", ".join(c.value for c in item.choices)
    elif item.kind is InputKind.CODE:
        needed = "a 6-digit code"
    else:
        needed = item.placeholder or "text"
    return f"{INDENT}{INDENT}{item.name}: {item.label} — {needed}"


def render_form(form: Form) -> str:
    """The console has no forms: say what the form would ask for, and what was given."""
    lines = [f"{form.title}: the console has no forms, so type the command with what is missing."]
    lines.extend(INDENT + line for line in form.text.splitlines())
    given = [i for i in form.inputs if i.initial]
    missing = [i for i in form.inputs if not i.initial and i.required]
    optional = [i for i in form.inputs if not i.initial and not i.required]
    if given:
        lines.append(INDENT + "given:")
        lines.extend(f"{INDENT}{INDENT}{i.name}: {i.initial}" for i in given)
    if missing:
        lines.append(INDENT + "missing:")
        lines.extend(describe_input(i) for i in missing)
    if optional:
        lines.append(INDENT + "optional:")
        lines.extend(describe_input(i) for i in optional)
    return "\n".join(lines)


def render_reply_text(reply: Reply) -> str:
    """The reply's text, its form (if any) and its field errors; the card is drawn apart."""
    lines: list[str] = []
    if reply.text or reply.hint:
        lines.append(reply.said(COMMAND_PREFIX))
    if reply.form is not None and reply.card is None:  # a card already says what to type
        lines.append(render_form(reply.form))
    for name, message in reply.field_errors.items():
        lines.append(f"{INDENT}{name}: {message}")
    return "\n".join(lines)
