"""Inbound deliveries acted on once: a replay is a primary-key conflict, on any replica.

A platform signs its requests but cannot stop the same signed bytes from being sent again
within its signature window (Slack: 5 minutes either way of the request's timestamp). Each
request carries something the platform makes unique (a trigger id, an action timestamp, an
event id); ``DeliveryLedger.take`` inserts it (``INSERT … ON CONFLICT DO NOTHING``) and says
whether this is its first delivery. The key is stored hashed (fixed length, and nothing of the
payload kept). Rows are needed only while the platform would still accept the bytes, so rows
older than ``KEEP_FOR`` are deleted, at most once per ``PURGE_EVERY`` per process, through the
``seen_at`` index: a range delete of the few rows that just aged out.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.database import Database
from pimbot.store.tables import InboundDeliveryRow

KEEP_FOR = timedelta(minutes=10)  # twice Slack's 5-minute signature window
PURGE_EVERY = timedelta(minutes=1)


def hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DeliveryLedger:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._purged_at: datetime | None = None

    async def take(
        self, session: AsyncSession, platform: str, key: str, kind: str, now: datetime
    ) -> bool:
        """Record the delivery ``key``; False when it was recorded before (a replay)."""
        insert = sqlite_insert if self._db.is_sqlite else postgres_insert
        statement = (
            insert(InboundDeliveryRow)
            .values(platform=platform, key=hashed(key), kind=kind[:32], seen_at=now)
            .on_conflict_do_nothing(index_elements=["platform", "key"])
        )
        result = await session.execute(statement)
        first = bool(getattr(result, "rowcount", 0))
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            await self.purge(session, now)
        return first

    async def purge(self, session: AsyncSession, now: datetime) -> int:
        """Forget deliveries older than ``KEEP_FOR``; the number of rows deleted."""
        result = await session.execute(
            delete(InboundDeliveryRow).where(InboundDeliveryRow.seen_at < now - KEEP_FOR)
        )
        self._purged_at = now
        return int(getattr(result, "rowcount", 0) or 0)
