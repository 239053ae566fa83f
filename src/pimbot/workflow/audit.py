"""Writing audit events from use cases (never a token, secret or one-time code)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.audit_log import NewEvent, append_event, append_events
from pimbot.workflow.context import Context


async def record(
    ctx: Context, session: AsyncSession, actor: str, action: str, subject: str = "",
    outcome: str = "ok", *, once_key: str | None = None, **detail: Any,
) -> None:
    """``once_key``: this event may exist once only (see ``append_event``)."""
    await append_event(ctx.db, session, at=ctx.clock.now(), actor=actor, action=action,
                       subject=subject, outcome=outcome, detail=detail, once_key=once_key)


class AuditBatch:
    """Events gathered while a batch of changes is worked out, appended together (one chain
    lock, one head read, one flush) by ``write`` before the transaction commits."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.events: list[NewEvent] = []

    def add(self, actor: str, action: str, subject: str = "", outcome: str = "ok", *,
            once_key: str | None = None, **detail: Any) -> None:
        self.events.append(NewEvent(at=self.ctx.clock.now(), actor=actor, action=action,
                                    subject=subject, outcome=outcome, detail=detail,
                                    once_key=once_key))

    async def write(self, session: AsyncSession) -> None:
        events, self.events = self.events, []
        await append_events(self.ctx.db, session, events)


async def record_alone(
    ctx: Context, actor: str, action: str, subject: str = "", outcome: str = "refused",
    **detail: Any,
) -> None:
    """An event in a transaction of its own (refusals, which change nothing else)."""
    async with ctx.db.transaction() as session:
        await record(ctx, session, actor, action, subject, outcome, **detail)
