"""Inbound deliveries acted on once: a replay is a primary-key conflict, on any replica, and
a retry of one whose recorder died before finishing is acted on after all.

A platform signs its requests but cannot stop the same signed bytes from being sent again
within its signature window (Slack: 5 minutes either way of the request's timestamp). Each
request carries something the platform makes unique (a trigger id, an action timestamp, an
event id); ``DeliveryLedger.take`` inserts it (``INSERT … ON CONFLICT DO NOTHING``) with the
replica that takes it (``owner``), before anything is acted on, and ``finish`` records when
the work is done (``done_at``). Only what the platform itself retries needs that (Slack's
Events API, the Bot Connector's activities); a Slack slash command or click is never
retried by Slack, so it is recorded finished when taken.

A delivery seen before is a replay (``Take.REPLAY``) unless it was never finished and its
claim has lapsed: its recorder is gone (``release`` clears the owner of a dead or stopped
replica's unfinished deliveries, from the replicas' reaping) or the claim is older than
``LEASE``. Then the platform's retry takes it over (``Take.RESUMED``) with one compare-and-set
``UPDATE``: two replicas receiving the same retry at once act on it once (PostgreSQL
re-checks the condition on the row the other replica just updated; SQLite has one writer).

The key is stored hashed (fixed length, and nothing of the payload kept). Rows are needed
only while the platform would still accept the bytes, so rows older than ``KEEP_FOR`` are
deleted, at most once per ``PURGE_EVERY`` per process, through the ``seen_at`` index.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.database import Database
from pimbot.store.tables import InboundDeliveryRow

KEEP_FOR = timedelta(minutes=10)  # twice Slack's 5-minute signature window
PURGE_EVERY = timedelta(minutes=1)
# A claim older than this, never finished, is taken over by a retry even if its recorder
# still beats (a turn stuck that long will not finish); well above any turn's length.
LEASE = timedelta(minutes=2)


class Take(StrEnum):
    FIRST = "first"  # never seen: act on it
    RESUMED = "resumed"  # seen, never finished, its claim lapsed: act on it now
    REPLAY = "replay"  # finished, or being acted on by a live replica: do nothing

    @property
    def acts(self) -> bool:
        return self is not Take.REPLAY


def hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DeliveryLedger:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._purged_at: datetime | None = None

    async def take(
        self, session: AsyncSession, platform: str, key: str, kind: str, now: datetime,
        owner: str = "", *, retryable: bool = True,
    ) -> Take:
        """Claim the delivery ``key`` for ``owner`` (see the module's docstring). A delivery
        the platform never retries (``retryable=False``: Slack's slash commands and clicks)
        is recorded finished at once: a second copy can only be a replay, and no ``finish``
        transaction is spent on it."""
        insert = sqlite_insert if self._db.is_sqlite else postgres_insert
        statement = (
            insert(InboundDeliveryRow)
            .values(platform=platform, key=hashed(key), kind=kind[:32], seen_at=now,
                    owner=owner or None, done_at=None if retryable else now)
            .on_conflict_do_nothing(index_elements=["platform", "key"])
        )
        result = await session.execute(statement)
        take = Take.FIRST if getattr(result, "rowcount", 0) else Take.REPLAY
        if take is Take.REPLAY:
            take = await self._take_over(session, platform, key, now, owner)
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            await self.purge(session, now)
        return take

    async def _take_over(self, session: AsyncSession, platform: str, key: str, now: datetime,
                         owner: str) -> Take:
        row = InboundDeliveryRow
        result = await session.execute(
            update(row)
            .where(row.platform == platform, row.key == hashed(key), row.done_at.is_(None),
                   or_(row.owner.is_(None), row.seen_at < now - LEASE))
            .values(owner=owner or None, seen_at=now)
            .execution_options(synchronize_session=False)
        )
        return Take.RESUMED if getattr(result, "rowcount", 0) else Take.REPLAY

    async def finish(self, platform: str, key: str, now: datetime) -> None:
        """Record that the work of ``key`` is done: a later retry is a replay."""
        async with self._db.transaction() as session:
            await session.execute(
                update(InboundDeliveryRow)
                .where(InboundDeliveryRow.platform == platform,
                       InboundDeliveryRow.key == hashed(key),
                       InboundDeliveryRow.done_at.is_(None))
                .values(done_at=now)
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    async def release(session: AsyncSession, owner: str) -> int:
        """``owner`` is gone (dead, or stopped): its unfinished deliveries may be retried."""
        result = await session.execute(
            update(InboundDeliveryRow)
            .where(InboundDeliveryRow.owner == owner, InboundDeliveryRow.done_at.is_(None))
            .values(owner=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge(self, session: AsyncSession, now: datetime) -> int:
        """Forget deliveries older than ``KEEP_FOR``; the number of rows deleted."""
        result = await session.execute(
            delete(InboundDeliveryRow).where(InboundDeliveryRow.seen_at < now - KEEP_FOR)
        )
        self._purged_at = now
        return int(getattr(result, "rowcount", 0) or 0)
