"""The audit events that name a person or a role, newest first, read through indexes.

``audit [USER|ROLE] [since WHEN]`` must answer in milliseconds on a log of millions of
events. An event names ``value`` when it is its actor or subject, or the ``user`` or ``role``
of its detail; each of the four has an index ending in ``seq`` (migration 0011), so each is
read newest first and stops after ``limit`` rows, and the four short lists are merged. The
detail is read with ``->>``, which PostgreSQL and SQLite (3.38+) both index.

``since`` becomes a floor on ``seq`` (the first event at or after ``since`` minus
``SINCE_MARGIN``, for events whose time was taken just before an earlier one committed),
and ``at >= since`` is still checked on every row, so the answer is exact. ``before`` pages
back: the events older than a seq already shown (keyset pagination).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, literal_column, select, union
from sqlalchemy.sql.elements import ColumnElement

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow

SINCE_MARGIN = timedelta(minutes=5)


def _detail(key: str) -> ColumnElement[str]:
    """``detail ->> 'KEY'`` written out literally, as the index (0011) is."""
    return literal_column(f"(detail ->> '{key}')", String)


def mentions(value: str) -> list[ColumnElement[bool]]:
    """The four ways an event names ``value``, one per index."""
    return [AuditEventRow.actor == value, AuditEventRow.subject == value,
            _detail("user") == value, _detail("role") == value]


async def search_events(db: Database, *, subject: str | None = None,
                        since: datetime | None = None, before: int | None = None,
                        limit: int = 25) -> list[AuditEventRow]:
    """At most ``limit`` events, newest first, naming ``subject`` (any when None), at or
    after ``since``, with a seq below ``before``."""
    bounds: list[ColumnElement[bool]] = []
    if before is not None:
        bounds.append(AuditEventRow.seq < before)
    async with db.read() as session:
        if since is not None:
            floor = await session.scalar(
                select(AuditEventRow.seq).where(AuditEventRow.at >= since - SINCE_MARGIN)
                .order_by(AuditEventRow.at, AuditEventRow.seq).limit(1))
            if floor is None:
                return []
            bounds += [AuditEventRow.seq >= floor, AuditEventRow.at >= since]
        query = select(AuditEventRow).where(*bounds)
        if subject is not None:
            branches = [select(AuditEventRow.seq).where(way, *bounds)
                        .order_by(AuditEventRow.seq.desc()).limit(limit).subquery()
                        for way in mentions(subject)]
            seqs = union(*(select(branch.c.seq) for branch in branches)).subquery()
            query = select(AuditEventRow).where(AuditEventRow.seq.in_(select(seqs.c.seq)))
        query = query.order_by(AuditEventRow.seq.desc()).limit(limit)
        return list((await session.scalars(query)).all())
