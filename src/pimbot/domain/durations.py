"""Durations as people type them: ``90s``, ``30m``, ``1h30m``, ``8h``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta

from pimbot.domain.errors import ErrorCode, PimError

_PART = re.compile(r"(\d{1,7})([dhms])")
_WHOLE = re.compile(r"(?:\d{1,7}[dhms])+")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
AT_LEAST = "a duration must be at least 1 second, like 30m"
FORMS = "90s, 30m, 1h30m, 8h or 2d"


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` and friends; raise PimError(DURATION) with a hint otherwise."""
    cleaned = text.strip().lower()
    if cleaned.startswith("-") and _WHOLE.fullmatch(cleaned[1:].strip()):
        raise PimError(ErrorCode.DURATION, f"'{text}' is negative: {AT_LEAST}", "30m")
    if not cleaned or not _WHOLE.fullmatch(cleaned):
        raise PimError(
            ErrorCode.DURATION,
            f"'{text}' is not a duration; use {FORMS}",
            FORMS,
        )
    seen: set[str] = set()
    seconds = 0
    for amount, unit in _PART.findall(cleaned):
        if unit in seen:
            raise PimError(ErrorCode.DURATION, f"'{text}' repeats the unit '{unit}'", "1h30m")
        seen.add(unit)
        seconds += int(amount) * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise PimError(ErrorCode.DURATION, f"'{text}' is zero: {AT_LEAST}", "30m")
    return timedelta(seconds=seconds)


HOURS_UP_TO = 12  # a bare number up to this is read as hours (for 2, for 8), else minutes


def probable_duration(amount: int, limit: timedelta) -> timedelta:
    """What a number typed without a unit probably meant, at most ``limit`` (a role's
    maximum): hours for a small one (``for 2``: 2h), minutes for a larger one (``for 30``:
    30m, ``for 90``: 1h30m), and ``limit`` when that is over it (``for 8`` where 2h is the
    most: 2h, not 8m, which nobody meant)."""
    unit = timedelta(hours=1) if amount <= HOURS_UP_TO else timedelta(minutes=1)
    return min(amount * unit, limit)


def format_duration(value: timedelta) -> str:
    """Render a duration compactly: ``1h30m``, ``2d``, ``45s``."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    units = dict(_UNIT_SECONDS)
    if total % 86400:
        del units["d"]  # 99h stays 99h (as typed), not 4d3h; whole days stay 2d
    parts: list[str] = []
    for unit, size in units.items():
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
