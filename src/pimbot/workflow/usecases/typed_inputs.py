"""What a person typed into a form (Slack modal, Teams card), kept by the rules text typed
in a message is kept by (``pimbot.domain.typed_text``): nothing invisible, and no
authenticator code inside a reason or a comment (the code has its own field)."""

from __future__ import annotations

from collections.abc import Mapping

from pimbot.domain.typed_text import code_in, code_refused, kept
from pimbot.ui.cards import Reply

_FREE_TEXT = ("reason", "comment")  # the inputs that are free text, shown to others


def kept_inputs(inputs: Mapping[str, str]) -> dict[str, str]:
    return {name: kept(value) for name, value in inputs.items()}


def code_refusal(inputs: Mapping[str, str]) -> Reply | None:
    """The refusal of a form whose reason or comment holds a code (on that field, the
    digits never echoed), else None."""
    for name in _FREE_TEXT:
        if code_in(inputs.get(name, "")) is not None:
            message = code_refused(name)
            return Reply(ok=False, text=message, field_errors={name: message})
    return None
