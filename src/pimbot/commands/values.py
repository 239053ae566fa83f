"""Checks for single values of the grammar: users, request ids, codes, durations, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pimbot.commands.model import UserRef, UserRefKind
from pimbot.commands.scanner import GrammarError, show
from pimbot.domain.durations import parse_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.ids import ALPHABET
from pimbot.domain.times import WHEN_EXAMPLES, resolve_until, resolve_when

_SLACK_MENTION = re.compile(r"<@([A-Za-z0-9]+)(?:\|[^>]*)?>")
_MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>", re.IGNORECASE)
_TEAMS_MENTION = re.compile(r"<at>(.*)</at>", re.IGNORECASE | re.DOTALL)
_EMAIL = re.compile(r"[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]+")
_REQUEST_ID = re.compile(f"#?([{ALPHABET}]{{1,32}})")
_CODE = re.compile(r"[0-9]{6}")
_TRAILING_CODE = re.compile(r"(.*?)(?:\s+mfa)?\s+code\s+([0-9]{3}\s?[0-9]{3})",
                            re.IGNORECASE | re.DOTALL)
# ``code`` and a number of a length a slip of the fingers gives (4, 5, 7 or 8 digits) at the
# end of a text: a mistyped code clause (``error code 404`` stays a reason).
_MISTYPED_CODE = re.compile(r"(.*?)(?:\s*(?<![\w-])mfa)?\s*(?<![\w-])code\s*[:=#]?\s*"
                            r"([0-9][0-9 ]*[0-9])", re.IGNORECASE | re.DOTALL)
_SLIP_LENGTHS = frozenset({4, 5, 7, 8})
_CODE_HALF = re.compile(r"[0-9]{3}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[0-9]{1,7}")
_UNIT_WORDS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
}
UNIT_OF_WORD = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
DAY_WORDS = frozenset({"today", "tomorrow", "yesterday"})
_VALIDATION_NOW = datetime(2000, 1, 1, tzinfo=UTC)


def parse_user(text: str) -> UserRef:
    """A person as typed: Slack mention (kept as its user id), email, or display name.

    For callers outside the grammar (the workflow classifying an ``audit`` subject):
    raises PimError(PARSE) for an empty reference.
    """
    try:
        return read_user(text)
    except GrammarError as problem:
        raise PimError(ErrorCode.PARSE, problem.message, "bob@example.com") from None


def read_user(text: str) -> UserRef:
    """:func:`parse_user` for the grammar (raises GrammarError)."""
    value = text.strip()
    if found := _SLACK_MENTION.fullmatch(value):
        return UserRef(UserRefKind.MENTION, found.group(1))
    if found := _MAILTO.fullmatch(value):
        value = found.group(1).strip()
    elif found := _TEAMS_MENTION.fullmatch(value):
        value = " ".join(found.group(1).split())
    if not value:
        raise GrammarError("the person is empty; give a mention, an email or a name")
    if _EMAIL.fullmatch(value):
        return UserRef(UserRefKind.EMAIL, value.lower())
    return UserRef(UserRefKind.NAME, value)


def check_request_id(text: str, what: str = "request id") -> str:
    found = _REQUEST_ID.fullmatch(text.strip().lower())
    if found is None:
        raise GrammarError(
            f"'{show(text)}' is not a {what}; ids are short codes like 7kq2xm4p "
            "(digits 2-9 and letters without i, l, o)"
        )
    return found.group(1)


def is_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


def trailing_code(text: str) -> tuple[str, str] | None:
    """``(text before, code)`` when unquoted free text ends in ``code 123456`` (or
    ``code 123 456``): the code clause typed after a ``reason`` or a ``comment``, which would
    otherwise be read as part of the text (shown to approvers, kept in the audit log)."""
    found = _TRAILING_CODE.fullmatch(text)
    if found is None:
        return None
    return found.group(1).strip(), found.group(2).replace(" ", "")


def mistyped_code(text: str) -> tuple[str, int] | None:
    """``(text before, how many digits)`` when ``text`` ends in ``code`` (or ``mfa code``)
    and a number of 4, 5, 7 or 8 digits: a code clause with a digit too few or too many."""
    found = _MISTYPED_CODE.fullmatch(text)
    if found is None:
        return None
    digits = len(found.group(2).replace(" ", ""))
    return (found.group(1).strip(), digits) if digits in _SLIP_LENGTHS else None


def is_code_half(text: str) -> bool:
    return _CODE_HALF.fullmatch(text) is not None


def is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def duration(text: str) -> timedelta:
    """A duration as typed; else what is wrong with it (zero, negative, a unit twice, or
    not a duration at all), in the domain's words."""
    try:
        return parse_duration(text)
    except PimError as problem:
        shown = problem.message.replace(f"'{text}'", f"'{show(text)}'", 1)
        raise GrammarError(shown, duration=True) from None


def looks_like_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except PimError:
        return False
    return True


def check_when(text: str, *, until: bool = False) -> str:
    """``text`` if it names a time (for ``at``, ``since``; ``until`` takes a day's end)."""
    try:
        if until:
            resolve_until(text, _VALIDATION_NOW)
        else:
            resolve_when(text, _VALIDATION_NOW)
    except PimError:
        raise GrammarError(f"'{show(text)}' is not a time; use {WHEN_EXAMPLES}") from None
    return text


def starts_two_word_time(first: str, second: str) -> bool:
    """Whether ``first second`` should be read as one time (``tomorrow 09:00``, ``7d ago``)."""
    head, tail = first.lower(), second.lower()
    if tail == "ago" or head == "in":
        return True
    starts_a_day = head in DAY_WORDS or _ISO_DATE.fullmatch(head) is not None
    return starts_a_day and tail[:1].isdigit()
