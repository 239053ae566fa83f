"""Text people type (a reason, a comment, a ticket), as pimbot keeps it.

Two rules hold for every such text, whether it came in a chat message or a form:

- **Nothing invisible is kept.** Unicode format characters (bidirectional controls such as
  U+202E, zero-width spaces and joiners, the soft hyphen, tag characters) are removed, and
  other control characters (terminal escapes) become U+FFFD, before anything reads the text.
  What is stored, audited and shown is then the same text: a card cannot show the words in
  another order than the audit log holds them, nor hide a word the approver never sees.
  Line breaks and tabs stay (cards draw them inertly, ``pimbot.ui.quoting``).
- **No authenticator code is kept.** ``code`` followed by six digits (``code 123456``,
  ``code 123 456``, ``code: 123456``) is what the grammar reads as the code clause; inside a
  text it would reach approvers' cards and the audit log, so :func:`code_in` finds it and the
  caller refuses the text (saying so, never echoing the digits).
- **A free text is at most** ``TEXT_LIMIT`` **characters** (a reason, a comment): 500, as
  Entra PIM caps a justification. Cards repeat it to every approver and channel, and Slack
  draws at most 3,000 characters in a section; a longer text is refused (:func:`too_long`),
  saying the limit and the length typed.
"""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
_KEPT_CONTROLS = frozenset("\n\r\t")
_ASCII_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CODE = re.compile(r"(?<![\w-])code\s*[:=#]?\s*([0-9]{3})\s?([0-9]{3})(?![0-9])", re.IGNORECASE)


def kept(text: str) -> str:
    """``text`` as pimbot keeps it: format characters removed, control characters other
    than line breaks and tabs shown as U+FFFD."""
    if text.isascii():  # the usual case, without a look at each character
        return _ASCII_CONTROLS.sub(REPLACEMENT, text)
    return "".join(_kept(char) for char in text)


def without_invisible(text: str) -> str:
    """``text`` without its format characters (what :func:`kept` removes)."""
    if text.isascii():
        return text
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def _kept(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cf":
        return ""
    if category == "Cc" and char not in _KEPT_CONTROLS:
        return REPLACEMENT
    return char


def code_in(text: str) -> tuple[int, int] | None:
    """Where ``text`` holds an authenticator code (``code 123456``): its span, else None."""
    found = _CODE.search(text)
    return None if found is None else found.span()


TEXT_LIMIT = 500


def too_long(what: str, text: str) -> str | None:
    """The refusal of a ``what`` (reason, comment) longer than ``TEXT_LIMIT``, else None."""
    if len(text) <= TEXT_LIMIT:
        return None
    return (f"The {what} is {len(text):,} characters long; at most {TEXT_LIMIT} are kept "
            f"(cards show it to every approver). Shorten it, or put the details in a ticket")


def code_refused(what: str) -> str:
    """The refusal of a ``what`` (reason, comment) that holds a code, in one line."""
    return (f"The {what} holds 'code' and 6 digits, which pimbot reads as an authenticator "
            f"code: a code is never kept in a {what}, where approvers and the audit log "
            "would see it. Nothing was changed; give the code clause after the text (or "
            "none, where the role asks for no code), or write the number without 'code'")
