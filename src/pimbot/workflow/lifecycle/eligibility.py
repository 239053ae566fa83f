"""Eligibility backs every activation for its whole life, not only at request time.

When it ends (an admin's `unassign`, a policy apply that drops it, its `until` date), the
person's waiting requests for the role are cancelled and active ones revoked; an approval or a
grant of a request that is no longer backed is refused; and a grant never outlasts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.lifecycle import Cause, target
from pimbot.domain.states import RequestKind, RequestState
from pimbot.store.tables import RequestRow
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.records import eligibilities, eligibility, open_requests

# Requests that exist because the person is eligible (active assignments stand on their own).
BACKED_BY_ELIGIBILITY = frozenset({RequestKind.ACTIVATION.value, RequestKind.BREAKGLASS.value,
                                   RequestKind.EXTENSION.value})
RECONCILE_EVERY = timedelta(minutes=5)


async def backing(session: AsyncSession, row: RequestRow,
                  now: datetime) -> tuple[bool, datetime | None]:
    """Is ``row`` still backed by eligibility, and when does that end (None: never, or a kind
    that stands on its own)? One query for both questions."""
    if row.kind not in BACKED_BY_ELIGIBILITY:
        return True, None
    found = await eligibility(session, row.email, row.role, now)
    return found is not None, found.ends_at if found is not None else None


async def backing_many(session: AsyncSession, rows: Sequence[RequestRow], now: datetime
                       ) -> dict[str, tuple[bool, datetime | None]]:
    """``backing`` for many requests in one query, by request id."""
    found = await eligibilities(session, [(row.email, row.role) for row in rows
                                          if row.kind in BACKED_BY_ELIGIBILITY], now)
    answers: dict[str, tuple[bool, datetime | None]] = {}
    for row in rows:
        if row.kind not in BACKED_BY_ELIGIBILITY:
            answers[row.id] = (True, None)
            continue
        assignment = found.get((row.email, row.role))
        answers[row.id] = (assignment is not None,
                           assignment.ends_at if assignment is not None else None)
    return answers


async def backed(session: AsyncSession, row: RequestRow, now: datetime) -> bool:
    return (await backing(session, row, now))[0]


async def end_unbacked(ctx: Context, session: AsyncSession, now: datetime,
                       email: str | None = None, role: str | None = None) -> int:
    """End every open request (of ``email`` / ``role`` if given) no longer backed."""
    ended = 0
    for row in await open_requests(session, email=email, role=role):
        if target(Cause.INELIGIBLE, RequestState(row.state)) is None:
            continue  # withdrawn meanwhile with the activation it would extend
        if row.kind in BACKED_BY_ELIGIBILITY and not await backed(session, row, now):
            await move(ctx, session, row, Cause.INELIGIBLE, note="no longer eligible")
            ended += 1
    return ended


async def schedule_reconcile(ctx: Context, after: datetime) -> None:
    """A reconcile pass every few minutes across all replicas (the dedupe key is the slot)."""
    step = RECONCILE_EVERY.total_seconds()
    slot = int(after.timestamp() // step) + 1
    due = datetime.fromtimestamp(slot * step, tz=after.tzinfo)
    async with ctx.db.transaction() as session:
        await schedule(session, JobKind.RECONCILE, due, dedupe_key=f"reconcile:{slot}")
