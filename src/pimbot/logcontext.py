"""What a log line is about: the request id, activation id and user of the work in hand.

Set with ``bound(...)`` where the work starts (an HTTP request, a chat turn, a job) and read
by ``ContextFilter``, which puts them on every log record made inside (``record.request_id``,
``record.activation_id``, ``record.user``; empty when unknown). Context variables follow
asyncio tasks, so concurrent turns and jobs never mix theirs up. Standard library only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("request_id", "activation_id", "user")
_VARS: dict[str, ContextVar[str]] = {name: ContextVar(f"pimbot_{name}", default="")
                                     for name in FIELDS}


@contextmanager
def bound(**values: str | None) -> Iterator[None]:
    """Within the block, log lines carry these values (None or "" keeps the outer one)."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()
              if value]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current(name: str) -> str:
    return _VARS[name].get()


class ContextFilter(logging.Filter):
    """Adds the bound fields to every record that passes (install it on the handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if not getattr(record, name, ""):
                setattr(record, name, _VARS[name].get())
        return True
