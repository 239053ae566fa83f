"""Field types of the policy file: durations, emails, principals, notify targets, times.

Each validator raises ``PydanticCustomError("policy", message)`` so that the message reaches
people verbatim, after the YAML path (``roles.x.max_duration: 99h is over the 24h limit``).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from pimbot.domain.durations import FORMS, format_duration, parse_duration
from pimbot.domain.errors import PimError

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_EMAIL = re.compile(r"[^@\s:,]+@[^@\s:,]+\.[^@\s:,.]+")
_SLACK_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")
_SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")
_TEAMS_CONVERSATION = re.compile(r"\S+")


def problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown exactly as written."""
    return PydanticCustomError("policy", message)


def show(value: Any) -> str:
    """A value as it would appear in YAML, for error messages."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


# --- durations ------------------------------------------------------------------------------


def _duration_validator(
    limit: timedelta | None, limit_text: str = ""
) -> Callable[[Any], timedelta]:
    def validate(value: Any) -> timedelta:
        if isinstance(value, timedelta):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = parse_duration(value)
            except PimError as exc:
                hint = "" if FORMS in exc.message else f" (write it like {FORMS})"
                raise problem(f"{exc.message}{hint}") from exc
        else:
            raise problem(f"{show(value)} is not a duration; use {FORMS}")
        if limit is not None and parsed > limit:
            shown = value if isinstance(value, str) else format_duration(parsed)
            raise problem(f"{shown} is over the {limit_text} limit")
        return parsed

    return validate


Duration = Annotated[timedelta, BeforeValidator(_duration_validator(None))]
DayDuration = Annotated[timedelta, BeforeValidator(_duration_validator(DAY, "24h"))]
WeekDuration = Annotated[timedelta, BeforeValidator(_duration_validator(WEEK, "7d"))]


def _seconds(value: Any) -> float:
    """A timeout: a duration (``10s``) or a positive number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        return _duration_validator(None)(value).total_seconds()
    raise problem(f"{show(value)} is not a duration (10s) or a positive number of seconds")


Seconds = Annotated[float, BeforeValidator(_seconds)]


def optional(validate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Let ``null`` through a validator (a plain ``X | None`` would blur error paths)."""

    def validate_optional(value: Any) -> Any:
        return None if value is None else validate(value)

    return validate_optional


OptDuration = Annotated[timedelta | None, BeforeValidator(optional(_duration_validator(None)))]
OptDayDuration = Annotated[
    timedelta | None, BeforeValidator(optional(_duration_validator(DAY, "24h")))
]


# --- people ---------------------------------------------------------------------------------


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value.strip()):
        raise problem(f"{show(value)} is not an email")
    return value.strip().lower()


def principal(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("group:") and NAME.fullmatch(text.removeprefix("group:")):
            return text
        if _EMAIL.fullmatch(text):
            return text.lower()
    raise problem(f"{show(value)} is neither an email nor group:NAME")


Email = Annotated[str, BeforeValidator(_email)]
Principal = Annotated[str, BeforeValidator(principal)]


# --- names, choices, counts -------------------------------------------------------------------


def check_name(value: Any, what: str) -> str | None:
    """A problem with a role, group or provider name, or None when it is fine."""
    if isinstance(value, str) and NAME.fullmatch(value):
        return None
    return f"{show(value)} is not a {what} name (letters, digits, '-' and '_'; no spaces)"


def _choice(*options: str) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in options:
            return value.strip().lower()
        raise problem(f"{show(value)} is not {' or '.join(options)}")

    return validate


def _at_least_one(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise problem(f"{show(value)} is not a whole number")
    if value < 1:
        raise problem(f"{value} is below 1 (at least one approval is needed)")
    return value


AssignmentKind = Annotated[str, BeforeValidator(_choice("eligible", "active"))]
DriftAction = Annotated[str, BeforeValidator(_choice("off", "alert", "revoke", "ignore"))]
ProviderMode = Annotated[str, BeforeValidator(_choice("direct", "pim"))]
NoResponseAction = Annotated[str, BeforeValidator(_choice("keep", "remove", "recommendation"))]
PositiveInt = Annotated[int, BeforeValidator(_at_least_one)]


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise problem(f"{show(value)} is not a non-empty text")
    return value.strip()


Text = Annotated[str, BeforeValidator(_text)]
OptText = Annotated[str | None, BeforeValidator(optional(_text))]


def _json_mapping(value: Any) -> dict[str, Any]:
    """Provider grant parameters: a mapping of plain JSON values (they are stored as JSON)."""
    if not isinstance(value, dict):
        raise problem(f"{show(value)} is not a mapping (key: value)")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise problem(
            "values must be text, numbers, true/false, lists or mappings (quote dates)"
        ) from None
    return value


JsonMapping = Annotated[dict[str, Any], BeforeValidator(_json_mapping)]


def _login_overrides(value: Any) -> dict[str, str]:
    """``{EMAIL: LOGIN}``: a person's own login, instead of the one the template gives."""
    if not isinstance(value, dict):
        raise problem(f"{show(value)} is not a mapping of emails to logins")
    logins: dict[str, str] = {}
    for email, login in value.items():
        if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()):
            raise problem(f"{show(email)} is not an email (logins maps emails to logins)")
        if not isinstance(login, str) or not login.strip():
            raise problem(f"the login of {email.strip()} must be a non-empty text")
        key = email.strip().lower()
        if key in logins:
            raise problem(f"{key} is named twice")
        logins[key] = login.strip()
    return logins


LoginOverrides = Annotated[dict[str, str], BeforeValidator(_login_overrides)]


def _command_line(value: Any) -> list[str]:
    if isinstance(value, str) and value.strip():
        return shlex.split(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise problem(f"{show(value)} is not a command (a string or a list of strings)")


CommandLine = Annotated[list[str], BeforeValidator(_command_line)]


def _http_url(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"https?://\S+", value.strip()):
        return value.strip()
    raise problem(f"{show(value)} is not an http:// or https:// URL")


HttpUrl = Annotated[str, BeforeValidator(_http_url)]


# --- tickets and notify targets -------------------------------------------------------------


def _ticket_rule(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value:
        raise problem(f"{show(value)} is not true, false or a regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise problem(f"{show(value)} is not a valid regular expression: {exc}") from exc
    return value


TicketRule = Annotated[bool | str, BeforeValidator(_ticket_rule)]


def _notify_target(value: Any) -> str:
    """Canonical form: ``slack:#name``, ``slack:CHANNELID`` or ``teams:CONVERSATION_ID``."""
    text = value.strip() if isinstance(value, str) else ""
    if _SLACK_CHANNEL_NAME.fullmatch(text):
        return f"slack:{text}"
    platform, _, target = text.partition(":")
    if platform == "slack" and (
        _SLACK_CHANNEL_NAME.fullmatch(target) or _SLACK_CHANNEL_ID.fullmatch(target)
    ):
        return text
    if platform == "teams" and _TEAMS_CONVERSATION.fullmatch(target):
        return text
    raise problem(
        f"{show(value)} is not slack:#name, slack:CHANNELID, teams:CONVERSATION_ID or #name"
    )


NotifyTarget = Annotated[str, BeforeValidator(_notify_target)]


# --- assignment windows ---------------------------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time_validator(end_of_day: bool) -> Callable[[Any], datetime]:
    """Dates mean 00:00 UTC of that day (``from``) or the next midnight (``until``)."""

    def validate(value: Any) -> datetime:
        if isinstance(value, str):
            text = value.strip()
            try:
                value = (
                    date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
                )
            except ValueError:
                raise problem(
                    f"{show(text)} is not a date (2027-03-31) or an ISO 8601 time "
                    "(2026-12-01T09:00:00Z)"
                ) from None
        if isinstance(value, datetime):
            return _as_utc(value)
        if isinstance(value, date):
            start = datetime.combine(value, time(0), tzinfo=UTC)
            return start + DAY if end_of_day else start
        raise problem(f"{show(value)} is not a date (2027-03-31) or an ISO 8601 time")

    return validate


StartTime = Annotated[datetime | None, BeforeValidator(optional(_time_validator(end_of_day=False)))]
EndTime = Annotated[datetime | None, BeforeValidator(optional(_time_validator(end_of_day=True)))]
