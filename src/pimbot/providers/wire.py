"""How times and grant parameters are written for other systems (webhook bodies, command env)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix; naive datetimes are a programming error."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a provider")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def compact_json(value: Any) -> str:
    """JSON without spaces; YAML dates and other odd values become strings."""
    return json.dumps(value, separators=(",", ":"), default=_plain)


def json_value_problem(value: Any) -> str | None:
    """Why ``value`` cannot be sent as JSON (a webhook body, ``PIMBOT_GRANT``), or None."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return "must be text, a number, true/false, a list or a mapping (quote dates)"
    return None
