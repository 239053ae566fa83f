"""Splits a chat message into words, one at a time, keeping quoted text and mentions whole.

Quotes: "…", '…' and the typographic “…” / ‘…’ that Slack, Teams and macOS substitute. A
quote opens only at the start of a word and closes only before whitespace or the end, so
``don't`` and ``O'Brien`` are ordinary words. Slack ``<@U1|bob smith>`` and Teams
``<at>Bob Smith</at>`` stay one word. Free text (``reason``) is read raw from the line.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from pimbot.domain.typed_text import kept

_CLOSERS = {
    '"': '"”“',
    "'": "'’",
    "“": '”“"',
    "”": "”",
    "‘": "’'",
    "’": "’",
}
_TEAMS_OPEN = re.compile(r"<at>", re.IGNORECASE)
_TEAMS_CLOSE = re.compile(r"</at>", re.IGNORECASE)


class GrammarError(Exception):
    """A problem found while reading a message; ``parse`` adds the hint and the error code."""

    def __init__(self, message: str, *, duration: bool = False,
                 unitless: int | None = None, code_in_text: bool = False,
                 repaired: str | None = None, role_missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.duration = duration or unitless is not None
        self.unitless = unitless  # a duration typed as a bare number (``for 30``)
        self.code_in_text = code_in_text  # ``code 123456`` inside a reason or a comment
        # The message as the person probably meant it (``for 30m``; the reason without the
        # code), read again for a hint that carries everything else they typed.
        self.repaired = repaired
        self.role_missing = role_missing  # no role where one goes: hinted with the person's


def show(text: str, limit: int = 40) -> str:
    """A word as echoed in an error message: one line, not too long."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Token:
    text: str  # without its quotes
    quoted: bool
    start: int
    end: int

    @property
    def word(self) -> str | None:
        """The lower-cased word when it could be a keyword (never for quoted text)."""
        return None if self.quoted else self.text.lower()


def clean(text: str) -> str:
    """The message as pimbot keeps what people type (``pimbot.domain.typed_text``): without
    the zero-width characters chat clients slip into pasted text, bidirectional controls or
    other invisible characters, and with control characters shown as U+FFFD."""
    return kept(text)


class Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_space(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos].isspace():
            pos += 1
        return pos

    def _closing(self, start: int) -> int | None:
        """Index of the quote closing the one at ``start``, or None."""
        closers = _CLOSERS[self.text[start]]
        for index in range(start + 1, len(self.text)):
            char = self.text[index]
            after = index + 1
            if char in closers and (after == len(self.text) or self.text[after].isspace()):
                return index
        return None

    def _read(self, pos: int) -> Token | None:
        start = self._skip_space(pos)
        if start >= len(self.text):
            return None
        if self.text[start] in _CLOSERS:
            close = self._closing(start)
            if close is None:
                raise GrammarError(
                    f"the quote before '{show(self.text[start + 1 :], 20)}' is not closed"
                )
            return Token(self.text[start + 1 : close], True, start, close + 1)
        end = self._bracketed_end(start)
        if end is None:
            end = start
            while end < len(self.text) and not self.text[end].isspace():
                end += 1
        return Token(self.text[start:end], False, start, end)

    def _bracketed_end(self, start: int) -> int | None:
        """End of a ``<@U1|a b>`` or ``<at>A B</at>`` mention that contains spaces."""
        if _TEAMS_OPEN.match(self.text, start):
            found = _TEAMS_CLOSE.search(self.text, start)
            return None if found is None else found.end()
        if self.text.startswith(("<@", "<mailto:"), start):
            close = self.text.find(">", start)
            return None if close < 0 else close + 1
        return None

    def peek(self) -> Token | None:
        return self._read(self.pos)

    def next(self) -> Token | None:
        token = self._read(self.pos)
        if token is not None:
            self.pos = token.end
        return token

    def at_end(self) -> bool:
        return self._skip_space(self.pos) >= len(self.text)

    def rest(self) -> str:
        """Everything not read yet, as typed (trimmed); reading stops at the end."""
        remainder = self.text[self.pos :].strip()
        self.pos = len(self.text)
        return remainder

    def free_text(self, followers: Container[str]) -> str:
        """A quoted text followed by the end or a word in ``followers``, else the rest."""
        return self.free_text_as_typed(followers)[0]

    def free_text_as_typed(self, followers: Container[str]) -> tuple[str, bool]:
        """:meth:`free_text`, and whether it was quoted (a quotation is taken literally)."""
        start = self._skip_space(self.pos)
        if start < len(self.text) and self.text[start] in _CLOSERS:
            close = self._closing(start)
            if close is not None:
                after = self._lookahead(close + 1)
                if after is None or after.word in followers:
                    self.pos = close + 1
                    return self.text[start + 1 : close].strip(), True
        return self.rest(), False

    def _lookahead(self, pos: int) -> Token | None:
        try:
            return self._read(pos)
        except GrammarError:
            return Token("", True, pos, pos)  # an unreadable word: not a follower
