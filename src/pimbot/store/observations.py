"""Figures about what a write transaction changed, counted only once it has committed.

Code inside a transaction notes what happened (``observe(session, …)``: a request moved to a
state, an approval waited, a revoke came so late); ``Database.on_commit`` callbacks read them
with ``committed(session)`` after the commit. A transaction that rolls back (a lost
compare-and-set, retried against fresh state) is never counted, so the figures match what the
database says happened. Nothing is read from the database for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

OBSERVED = "pimbot_observed"


class Figure(StrEnum):
    REQUEST_MOVED = "request_moved"  # labels: state (the new one); value 1
    APPROVAL_WAITED = "approval_waited"  # labels: outcome; value: seconds from request
    REVOKED_LATE = "revoked_late"  # value: seconds from when access should have ended


@dataclass(frozen=True)
class Observation:
    figure: Figure
    value: float
    labels: tuple[tuple[str, str], ...] = ()


def observe(session: AsyncSession, figure: Figure, value: float = 1.0, **labels: str) -> None:
    session.info.setdefault(OBSERVED, []).append(
        Observation(figure, value, tuple(sorted(labels.items()))))


def committed(session: AsyncSession) -> list[Observation]:
    """What the committed transaction of ``session`` noted (call from ``on_commit``)."""
    found: list[Observation] = session.info.get(OBSERVED, [])
    return found
