"""The Teams adapter's own rows: the channels it can post to and the cards its messages show.

People (and their personal-chat conversation references) are not here: they are the core's
``platform_identities``, written by ``PimCore.remember_identity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from pimbot.ports import Clock
from pimbot.store.database import Database
from pimbot.store.tables import TeamsCardRow, TeamsConversationRow


@dataclass(frozen=True)
class ChannelPlace:
    conversation_id: str
    tenant_id: str
    service_url: str
    removed: bool = False  # pimbot was removed from its team: nothing is posted there


class TeamsStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def remember_place(self, conversation_id: str, tenant_id: str, service_url: str,
                             kind: str, name: str = "", team_id: str = "") -> None:
        """A team or channel heard from (a mention, the bot added to a team); a place pimbot
        hears from again is no longer removed."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.get(TeamsConversationRow, conversation_id)
            if row is None:
                session.add(TeamsConversationRow(
                    conversation_id=conversation_id, tenant_id=tenant_id,
                    service_url=service_url, kind=kind, name=name, updated_at=now,
                    team_id=team_id))
                return
            same = (row.service_url, row.tenant_id) == (service_url, tenant_id)
            if same and not name and row.removed_at is None and (row.team_id or not team_id):
                return
            row.service_url, row.tenant_id, row.updated_at = service_url, tenant_id, now
            row.name = name or row.name
            row.team_id = row.team_id or team_id
            row.removed_at = None

    async def team_added(self, team_id: str) -> None:
        """pimbot is in ``team_id`` (again): its channels pimbot knew are places again."""
        await self._mark_team(team_id, None)

    async def team_removed(self, team_id: str) -> int:
        """pimbot was removed from ``team_id``: nothing is posted to it or to any channel of
        it pimbot knew, until it is added back. The number of places that were removed."""
        return await self._mark_team(team_id, self.clock.now())

    async def _mark_team(self, team_id: str, removed_at: datetime | None) -> int:
        if not team_id:
            return 0
        async with self.db.transaction() as session:
            result = await session.execute(
                update(TeamsConversationRow)
                .where(or_(TeamsConversationRow.conversation_id == team_id,
                           TeamsConversationRow.team_id == team_id))
                .values(removed_at=removed_at))
            return int(getattr(result, "rowcount", 0) or 0)

    async def place(self, conversation_id: str) -> ChannelPlace | None:
        async with self.db.read() as session:
            row = await session.get(TeamsConversationRow, conversation_id)
            if row is None:
                return None
            return ChannelPlace(row.conversation_id, row.tenant_id, row.service_url,
                                removed=row.removed_at is not None)

    async def any_place(self, tenant_ids: tuple[str, ...]) -> ChannelPlace | None:
        """Some place of a served tenant, for its service URL (the same for a whole tenant);
        never one pimbot was removed from."""
        async with self.db.read() as session:
            query = select(TeamsConversationRow).where(
                TeamsConversationRow.removed_at.is_(None)).order_by(
                TeamsConversationRow.updated_at.desc())
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
