"""Sending cards through the platforms' gateways, and redrawing the copies already sent."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.ports import ChatGateway, SentMessage, Unreachable
from pimbot.store.database import Database
from pimbot.store.prepared import Prepared, run_many
from pimbot.store.tables import MessageRow
from pimbot.ui.cards import Card

log = logging.getLogger(__name__)

# Which views are redrawn when their request changes (the others are one-off notices).
UPDATABLE_VIEWS = frozenset({"approval", "requester", "approver_reminder", "reminder",
                             "review_item"})
_INSERT_COPIES = Prepared(insert(MessageRow.__table__),  # type: ignore[arg-type]
                          keys=("subject_id", "view", "audience", "platform", "ref", "sent_at"))


def channel_platform(channel: str) -> tuple[str, str]:
    """``PLATFORM:NAME`` → (PLATFORM, NAME): ``slack:#ops``, ``teams:19:…@thread.tacv2``. The
    policy has already written a bare ``#name`` as ``slack:#name``."""
    platform, _, name = channel.partition(":")
    return platform, name


class Delivery:
    def __init__(self, db: Database, gateways: list[ChatGateway]) -> None:
        self.db = db
        self.gateways = gateways

    def gateway_for(self, platform: str) -> ChatGateway | None:
        """The gateway of that platform in this process, if its adapter runs here."""
        return self._by_platform(platform)

    def _by_platform(self, platform: str) -> ChatGateway | None:
        for gateway in self.gateways:
            if gateway.platform == platform:
                return gateway
        return None

    async def to_user(self, email: str, card: Card, prefer: str = "") -> SentMessage:
        """DM the person on the first platform that reaches them (the request's own first)."""
        ordered = sorted(self.gateways, key=lambda g: g.platform != prefer)
        for gateway in ordered:
            if await gateway.can_reach(email):
                try:
                    return await gateway.send_to_user(email, card)
                except Unreachable:
                    continue
        raise Unreachable(f"{email} cannot be reached on any connected platform")

    async def to_channel(self, channel: str, card: Card) -> SentMessage | None:
        platform, name = channel_platform(channel)
        gateway = self._by_platform(platform)
        if gateway is None and len(self.gateways) == 1:
            gateway = self.gateways[0]  # one platform only (the console): it shows them all
        if gateway is None:
            log.warning("no %s adapter is running; notice for %s not sent", platform, channel)
            return None
        target = name if gateway.platform == platform else channel
        return await gateway.send_to_channel(target, card)

    @staticmethod
    async def remember_in(session: AsyncSession, copies: list[tuple[str, str, str, SentMessage]],
                          now: datetime) -> None:
        """Store the sent copies (subject id, view, audience, sent) of the cards that are
        redrawn when their subject changes (``UPDATABLE_VIEWS``), in the caller's transaction,
        with one statement."""
        rows = [{"subject_id": subject_id, "view": view, "audience": audience,
                 "platform": sent.platform, "ref": dict(sent.ref), "sent_at": now}
                for subject_id, view, audience, sent in copies if view in UPDATABLE_VIEWS]
        if rows:
            await run_many(session, _INSERT_COPIES, rows)

    async def update(self, row: MessageRow, card: Card) -> None:
        gateway = self._by_platform(row.platform)
        if gateway is None:
            return
        await gateway.update(SentMessage(row.platform, {k: str(v) for k, v in row.ref.items()}),
                             card)
