"""What a person typed into a form (Slack modal, Teams card), kept by the rules text typed
in a message is kept by (``pimbot.domain.typed_text``): nothing invisible, and no
authenticator code inside a reason or a comment (the code has its own field), and neither
longer than ``typed_text.TEXT_LIMIT``."""

from __future__ import annotations

from collections.abc import Mapping

from pimbot.domain.typed_text import code_in, code_refused, kept, too_long
from pimbot.ui.cards import Reply

_FREE_TEXT = ("reason", "comment")  # the inputs that are free text, shown to others


def kept_inputs(inputs: Mapping[str, str]) -> dict[str, str]:
    return {name: kept(value) for name, value in inputs.items()}


def code_refusal(inputs: Mapping[str, str]) -> Reply | None:
    """The refusal of a form whose reason or comment holds a code (on that field, the
    digits never echoed) or is too long, else None."""
    for name in _FREE_TEXT:
        value = inputs.get(name, "")
        message = code_refused(name) if code_in(value) is not None else too_long(name, value)
        if message is not None:
            return Reply(ok=False, text=message, field_errors={name: message})
    return None
