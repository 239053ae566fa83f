"""The Teams adapter's own rows: the channels it can post to and the cards its messages show.

People (and their personal-chat conversation references) are not here: they are the core's
``platform_identities``, written by ``PimCore.remember_identity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from pimbot.ports import Clock
from pimbot.store.database import Database
from pimbot.store.tables import TeamsCardRow, TeamsConversationRow


@dataclass(frozen=True)
class ChannelPlace:
    conversation_id: str
    tenant_id: str
    service_url: str


class TeamsStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def remember_place(self, conversation_id: str, tenant_id: str, service_url: str,
                             kind: str, name: str = "") -> None:
        """A team or channel heard from (a mention, the bot added to a team)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.get(TeamsConversationRow, conversation_id)
            if row is None:
                session.add(TeamsConversationRow(
                    conversation_id=conversation_id, tenant_id=tenant_id,
                    service_url=service_url, kind=kind, name=name, updated_at=now))
                return
            if (row.service_url, row.tenant_id) == (service_url, tenant_id) and not name:
                return
            row.service_url, row.tenant_id, row.updated_at = service_url, tenant_id, now
            row.name = name or row.name

    async def place(self, conversation_id: str) -> ChannelPlace | None:
        async with self.db.read() as session:
            row = await session.get(TeamsConversationRow, conversation_id)
            if row is None:
                return None
            return ChannelPlace(row.conversation_id, row.tenant_id, row.service_url)

    async def any_place(self, tenant_ids: tuple[str, ...]) -> ChannelPlace | None:
        """Some place of a served tenant, for its service URL (the same for a whole tenant)."""
        async with self.db.read() as session:
            query = select(TeamsConversationRow).order_by(TeamsConversationRow.updated_at.desc())
            if tenant_ids:
                query = query.where(TeamsConversationRow.tenant_id.in_(tenant_ids))
            row = (await session.execute(query.limit(1))).scalars().first()
            if row is None:
                return None
            return ChannelPlace(row.conversation_id, row.tenant_id, row.service_url)

    async def save_card(self, conversation_id: str, activity_id: str, service_url: str,
                        card: dict[str, Any]) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.get(TeamsCardRow, (conversation_id, activity_id))
            if row is None:
                session.add(TeamsCardRow(conversation_id=conversation_id,
                                         activity_id=activity_id, service_url=service_url,
                                         card=card, updated_at=now))
            else:
                row.card, row.updated_at = card, now

    async def card(self, conversation_id: str, activity_id: str) -> dict[str, Any] | None:
        async with self.db.read() as session:
            row = await session.get(TeamsCardRow, (conversation_id, activity_id))
            return None if row is None else dict(row.card)
