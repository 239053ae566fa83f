"""WHEN / DATE expressions resolved against a fixed now (Monday 2026-11-02 15:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.times import resolve_until, resolve_when

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16:00", at(2, 16)),  # still ahead today
        ("14:30", at(3, 14, 30)),  # already past: tomorrow
        ("15:00", at(2, 15)),  # now counts as today
        ("9:05", at(3, 9, 5)),
        ("23:59:30", datetime(2026, 11, 2, 23, 59, 30, tzinfo=UTC)),
        ("14:30Z", at(3, 14, 30)),
        ("16:30+02:00", at(3, 14, 30)),  # 17:00 in +02:00 now, so 16:30 there is tomorrow
        ("18:00+02:00", at(2, 16)),
        ("today 17:00", at(2, 17)),
        ("Today 09:00", at(2, 9)),  # a past time today stays today
        ("tomorrow 09:00", at(3, 9)),
        ("TOMORROW 9:00", at(3, 9)),
        ("yesterday 12:00", at(1, 12)),
        ("today", at(2, 0)),
        ("tomorrow", at(3, 0)),
        ("2027-03-31", at(31, 0, month=3, year=2027)),
        ("2027-03-31 09:00", at(31, 9, month=3, year=2027)),
        ("2027-03-31T09:00", at(31, 9, month=3, year=2027)),
        ("2027-03-31t09:00z", at(31, 9, month=3, year=2027)),
        ("2027-03-31T09:00:00+02:00", at(31, 7, month=3, year=2027)),
        ("2027-03-31T09:00:00.5Z", datetime(2027, 3, 31, 9, 0, 0, 500000, tzinfo=UTC)),
        ("+2h", at(2, 17)),
        ("in 2h", at(2, 17)),
        ("in 1h30m", at(2, 16, 30)),
        ("-7d", at(26, 15, month=10)),
        ("7d ago", at(26, 15, month=10)),
        ("  14:30  ", at(3, 14, 30)),
    ],
)
def test_resolve_when(text: str, expected: datetime) -> None:
    resolved = resolve_when(text, NOW)
    assert resolved == expected
    assert resolved.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-31", at(1, 0, month=4, year=2027)),  # the end of that day
        ("today", at(3, 0)),
        ("tomorrow", at(4, 0)),
        ("2027-03-31T09:00Z", at(31, 9, month=3, year=2027)),  # a time stays that time
        ("tomorrow 09:00", at(3, 9)),
        ("in 2d", at(4, 15)),
    ],
)
def test_resolve_until_ends_a_bare_date_at_midnight(text: str, expected: datetime) -> None:
    assert resolve_until(text, NOW) == expected


def test_now_in_another_zone_gives_the_same_answer() -> None:
    local_now = NOW.astimezone(timezone(timedelta(hours=-8)))
    assert resolve_when("14:30", local_now) == at(3, 14, 30)
    assert resolve_when("today 17:00", local_now) == at(2, 17)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "soon",
        "25:00",
        "14:60",
        "24:00",
        "14h30",
        "2027-02-30",
        "2027-3-31",
        "31/03/2027",
        "tomorrow morning",
        "today 25:00",
        "in",
        "in soon",
        "in 0m",
        "+",
        "ago",
        "2h ago ago",
        "next tuesday 09:00",
        "2027-03-31T25:00",
        "in 9999999d",
        "-9999999d",
        "9999-12-31T23:00-05:00",
        "１４:３０",
    ],
)
def test_bad_times_are_parse_errors_with_a_hint(text: str) -> None:
    with pytest.raises(PimError) as caught:
        resolve_when(text, NOW)
    assert caught.value.code is ErrorCode.PARSE
    assert "is not a time" in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.hint


def test_until_the_last_representable_day_is_an_error_not_a_crash() -> None:
    assert resolve_when("9999-12-31", NOW) == datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(PimError):
        resolve_until("9999-12-31", NOW)


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        resolve_when("14:30", datetime(2026, 11, 2, 15, 0))
