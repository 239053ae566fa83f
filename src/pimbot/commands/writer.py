"""Writes what a person typed back into a command line that reads back the same.

A hint that suggests a command (``try: activate staging-deploy for 30m reason …``) carries
the reason, ticket and start the person already gave, so they need not type them again. Each
value is written as it stands when the grammar reads that back unchanged, else between the
first pair of quotes that does (``"…"``, ``'…'``, ``“…”``, ``‘…’``: a reason that starts
with a quotation, or holds ``for`` after a quoted word, needs them). Every form is checked by
the grammar's own reader, so the check cannot drift from the grammar. A value no form reads
back (a quotation followed by a clause word, holding both kinds of quotes: only a form can
give one), or that holds a line break (a hint is one line), gives None, and the caller keeps
the placeholder ``…``.

A free text is written to be the last clause of its line (it takes the rest of the line).
An authenticator code is never written back: the examples' ``123456`` stands in for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from pimbot.commands import model as m
from pimbot.commands.reader import Clause, Reader
from pimbot.commands.scanner import GrammarError, Scanner
from pimbot.domain.durations import format_duration
from pimbot.domain.examples import SAMPLE_CODE, SAMPLE_REASON

Writer = Callable[[str], "str | None"]  # one of free_text, word, when

_LINE_BREAK = re.compile("[\n\r\v\f\x85\u2028\u2029]")
_QUOTES = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"))
# Every clause ``activate`` takes: a text written to read back here reads back after any verb.
_ALL = frozenset({Clause.FOR, Clause.REASON, Clause.TICKET, Clause.CODE, Clause.AT})


def free_text(text: str) -> str | None:
    """``text`` as the last clause's value (a reason, a comment) that reads back as ``text``."""
    return _written(Clause.REASON, text)


def word(text: str) -> str | None:
    """``text`` as one value (a ticket) that reads back as ``text``."""
    return _written(Clause.TICKET, text)


def when(text: str) -> str | None:
    """``text`` as a start time (``at``) that reads back as ``text``."""
    return _written(Clause.AT, text)


def _written(clause: Clause, text: str) -> str | None:
    if _LINE_BREAK.search(text):  # a hint is one line (a form's reason may hold several)
        return None
    for form in (text, *(f"{opening}{text}{closing}" for opening, closing in _QUOTES)):
        if _reads_back(clause, form) == text:
            return form
    return None


def _reads_back(clause: Clause, form: str) -> str | None:
    reader = Reader(Scanner(f"{clause} {form}"), "activate")
    try:
        found = reader.clauses(_ALL)
    except GrammarError:
        return None
    value: str | None = getattr(found, clause.value)
    return value


def command_line(command: m.Command) -> str | None:
    """A command written back as a line that reads back the same (its code as the
    placeholder), for the commands that carry a text; None for any other."""
    match command:
        case m.Activate(role=str() as role):
            return _line("activate", role=role, at=command.at, duration=command.duration,
                         ticket=command.ticket, code=command.code,
                         text=("reason", command.reason))
        case m.Breakglass():
            return _line("breakglass", role=command.role, duration=command.duration,
                         code=command.code, text=("reason", command.reason))
        case m.Extend():
            return _line("extend", role=command.role, duration=command.duration,
                         code=command.code, text=("", None))
        case m.Approve():
            return _line(f"approve {command.request_id}", code=command.code,
                         text=("comment", command.comment))
        case m.Deny():
            return _line(f"deny {command.request_id}", text=("reason", command.reason))
        case m.ReviewKeep():
            return _line(f"review keep {command.item_id}", text=("reason", command.reason))
        case m.ReviewRemove():
            return _line(f"review remove {command.item_id}", text=("reason", command.reason))
    return None


def _line(verb: str, *, role: str | None = None, at: str | None = None,
          duration: timedelta | None = None, ticket: str | None = None,
          code: str | None = None, text: tuple[str, str | None]) -> str:
    parts = [verb]
    if role is not None:
        parts.append(word(role) or role)
    if at is not None:
        parts += ["at", when(at) or at]
    if duration is not None:
        parts += ["for", format_duration(duration)]
    if ticket is not None:
        parts += ["ticket", word(ticket) or "…"]
    if code is not None:
        parts += ["code", SAMPLE_CODE]
    clause, value = text
    if value is not None:
        parts += [clause, free_text(value) or SAMPLE_REASON]
    return " ".join(parts)
