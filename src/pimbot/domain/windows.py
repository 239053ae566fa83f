"""Time windows like ``Mon-Fri 09:00-18:00 Europe/Berlin``, read and checked in their zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})"
    r"\s+(?P<zone>[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*)\s*$")


class WindowError(ValueError):
    """A window that cannot be read; the message says why (shown with its YAML path)."""


@dataclass(frozen=True)
class Window:
    text: str
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # before ``start``: the window runs past midnight
    zone: str

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.zone))
        now, day = local.time(), local.weekday()
        if self.start <= self.end:
            return day in self.days and self.start <= now < self.end
        # Past midnight: the part after midnight belongs to the day the window started.
        return (day in self.days and now >= self.start) or \
            ((day - 1) % 7 in self.days and now < self.end)


def _day(name: str) -> int:
    key = name.strip().lower()[:3]
    if key not in DAYS:
        raise WindowError(f"'{name}' is not a day (use Mon, Tue, … Sun)")
    return DAYS.index(key)


def _days(text: str) -> frozenset[int]:
    if text.strip().lower() in {"daily", "every-day", "all"}:
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        start = _day(first)
        stop = _day(last) if last else start
        span = (stop - start) % 7
        days.update((start + offset) % 7 for offset in range(span + 1))
    return frozenset(days)


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise WindowError(f"'{text}' is not a time of day")
    return time(0, 0) if hours == 24 else time(hours, minutes)


def parse_window(text: str) -> Window:
    """``DAYS HH:MM-HH:MM ZONE``: days as ``Mon-Fri``, ``Sat,Sun`` or ``daily``; the zone
    is an IANA name (``Europe/Berlin``, ``UTC``)."""
    found = _WINDOW.match(text)
    if found is None:
        raise WindowError(f"'{text}' is not a window like 'Mon-Fri 09:00-18:00 Europe/Berlin'")
    try:
        ZoneInfo(found["zone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"'{found['zone']}' is not a time zone (an IANA name like "
                          "Europe/Berlin)") from None
    start, end = _clock(found["start"]), _clock(found["end"])
    if start == end:
        raise WindowError(f"'{text}' starts and ends at the same time")
    return Window(text.strip(), _days(found["days"]), start, end, found["zone"])
