"""Points in time as people type them: ``14:30``, ``tomorrow 09:00``, ISO 8601, ``in 2h``.

Everything is resolved against an aware ``now`` and returned as an aware UTC datetime.
A time of day without an offset is UTC. Pure standard library.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from pimbot.domain.durations import parse_duration
from pimbot.domain.errors import ErrorCode, PimError

WHEN_EXAMPLES = "14:30, tomorrow 09:00, 2027-03-31, 2027-03-31T09:00Z or in 2h"
_DAY_WORDS = {"yesterday": -1, "today": 0, "tomorrow": 1}
_CLOCK = re.compile(r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY = timedelta(days=1)


def resolve_when(text: str, now: datetime) -> datetime:
    """The moment ``text`` names, seen from ``now``; a bare date is its first second."""
    return _resolve_safely(text, _utc(now), end_of_day=False)


def resolve_until(text: str, now: datetime) -> datetime:
    """Like :func:`resolve_when`, but a bare date (or day word) means the END of that day."""
    return _resolve_safely(text, _utc(now), end_of_day=True)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


def _bad(text: str) -> PimError:
    shown = " ".join(text.split())[:40]
    return PimError(ErrorCode.PARSE, f"'{shown}' is not a time; use {WHEN_EXAMPLES}", "14:30")


def _resolve_safely(text: str, now: datetime, *, end_of_day: bool) -> datetime:
    try:
        return _resolve(text, now, end_of_day=end_of_day)
    except OverflowError:
        raise _bad(text) from None


def _resolve(text: str, now: datetime, *, end_of_day: bool) -> datetime:
    words = text.strip().split()
    if not words or len(words) > 2:
        raise _bad(text)
    first = words[0].lower()
    if first == "in" or first[0] in "+-":
        return _relative(words, now, text)
    if len(words) == 2 and words[1].lower() == "ago":
        return now - _duration(words[0], text)
    if first in _DAY_WORDS:
        day = now.date() + timedelta(days=_DAY_WORDS[first])
        return _on_day(day, words[1:], text, end_of_day=end_of_day)
    if _DATE.fullmatch(first):
        return _on_day(_date(first, text), words[1:], text, end_of_day=end_of_day)
    if len(words) == 1 and _CLOCK.fullmatch(words[0].upper()):
        return _next_clock(_clock(words[0], text), now)
    if len(words) == 1:
        return _iso_datetime(words[0], text)
    raise _bad(text)


def _relative(words: list[str], now: datetime, text: str) -> datetime:
    if words[0].lower() == "in":
        if len(words) != 2:
            raise _bad(text)
        return now + _duration(words[1], text)
    joined = "".join(words)
    sign = -1 if joined.startswith("-") else 1
    return now + sign * _duration(joined[1:], text)


def _duration(amount: str, text: str) -> timedelta:
    try:
        return parse_duration(amount)
    except PimError:
        raise _bad(text) from None


def _date(word: str, text: str) -> date:
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise _bad(text) from None


def _clock(word: str, text: str) -> time:
    upper = word.upper()
    if len(upper.split(":", 1)[0]) == 1:
        upper = "0" + upper
    try:
        return time.fromisoformat(upper)
    except ValueError:
        raise _bad(text) from None


def _on_day(day: date, rest: list[str], text: str, *, end_of_day: bool) -> datetime:
    if not rest:
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start + _DAY if end_of_day else start
    if not _CLOCK.fullmatch(rest[0].upper()):
        raise _bad(text)
    clock = _clock(rest[0], text)
    zone: tzinfo = clock.tzinfo or UTC
    return datetime.combine(day, clock.replace(tzinfo=zone)).astimezone(UTC)


def _next_clock(clock: time, now: datetime) -> datetime:
    """The next time the clock shows ``clock`` (today if still ahead or now, else tomorrow)."""
    zone: tzinfo = clock.tzinfo or UTC
    local_now = now.astimezone(zone)
    candidate = datetime.combine(local_now.date(), clock.replace(tzinfo=zone))
    if candidate < local_now:
        candidate = datetime.combine(local_now.date() + _DAY, clock.replace(tzinfo=zone))
    return candidate.astimezone(UTC)


def _iso_datetime(word: str, text: str) -> datetime:
    if "T" not in word.upper():
        raise _bad(text)
    try:
        moment = datetime.fromisoformat(word.upper())
    except ValueError:
        raise _bad(text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
