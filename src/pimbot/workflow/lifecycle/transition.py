"""State changes on a request row: checked against the table, compare-and-set on flush."""

from __future__ import annotations

from typing import Any

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.states import RequestState, can_transition
from pimbot.store.tables import RequestRow


def move(row: RequestRow, target: RequestState, **changes: Any) -> None:
    """Change state; the flush is ``UPDATE … WHERE version = ?`` (StaleDataError if raced)."""
    current = RequestState(row.state)
    if not can_transition(current, target):
        raise PimError(
            ErrorCode.STATE,
            f"Request {row.id} is {current.value.replace('_', ' ')}; it cannot become "
            f"{target.value.replace('_', ' ')}.",
        )
    row.state = target.value
    for name, value in changes.items():
        setattr(row, name, value)
