"""Where ``pimbot`` logs go and how they look: text, or one JSON object a line.

``PIMBOT_LOG_FORMAT=json`` writes each record as a JSON object with ``time`` (ISO 8601 UTC),
``level``, ``logger``, ``message``, the work it belongs to when known (``request_id``,
``activation_id``, ``user``: ``pimbot.logcontext``) and ``exception`` (the traceback) when
there is one. Messages are pimbot's own words: never a token, secret or one-time code.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pimbot.logcontext import FIELDS, ContextFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, "")
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: int, fmt: str = "text") -> None:
    """Log to stderr at ``level``, as text or JSON (``fmt``), with the work's fields."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
