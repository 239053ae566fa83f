"""What a chat turn's first attempt saw, for the attempts that retry it after a race.

``PimCore`` runs a turn again when its transaction lost a compare-and-set to another one
(two clicks at once). The retry reads fresh state, which is right for most checks but not
for the question "did this person decide with the request as they saw it?": a ``cancel``
typed against a waiting request that loses to an approval must answer "already approved",
not cancel the approved request (two outcomes for one request). ``first_seen`` keeps, for
the running turn only, the state each request had when the turn first read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_seen: ContextVar[dict[str, str] | None] = ContextVar("pimbot_turn_first_seen", default=None)


@contextlib.contextmanager
def turn_scope() -> Iterator[None]:
    """Wrap every attempt of one turn."""
    token = _seen.set({})
    try:
        yield
    finally:
        _seen.reset(token)


def first_seen(request_id: str, state: str) -> str:
    """The state ``request_id`` had when this turn first read it (``state`` if this is the
    first read, or outside a turn)."""
    seen = _seen.get()
    if seen is None:
        return state
    return seen.setdefault(request_id, state)
