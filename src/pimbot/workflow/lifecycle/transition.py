"""The one mechanism that changes a request's state, driven by ``pimbot.domain.lifecycle``.

``move`` checks the transition against the table, sets it (a compare-and-set on the row's
version at flush), writes the audit event, and writes every follow-up in the same
transaction: the grant or expiry job, the release of the grant the request held, the notices
and the card redraw. Every path that changes a request's state goes through here, so "what
happens when a request ends" has one answer whatever ended it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.lifecycle import DECISIONS, RULES, Announce, Cause, ends_access, target
from pimbot.domain.states import RequestKind, RequestState, is_terminal
from pimbot.store.observations import Figure, observe
from pimbot.store.tables import RequestRow
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.expiry import schedule_expiry
from pimbot.workflow.lifecycle.holds import lock_slot, release
from pimbot.workflow.notices.outbox import (
    JobKind,
    notify_channels,
    notify_user,
    refresh_cards,
    schedule,
)

SYSTEM_ACTORS = frozenset({"pimbot", "policy", "break-glass", "review"})


async def move(ctx: Context, session: AsyncSession, row: RequestRow, cause: Cause, *,
               actor: str = "pimbot", note: str = "", outcome: str = "ok",
               **detail: Any) -> RequestState:
    """Move ``row`` for ``cause`` with every follow-up; returns the new state.

    Raises PimError(STATE) when the cause does not apply to the current state (a decided
    request, a race lost before the flush); a race lost at the flush raises StaleDataError,
    which the caller's turn or job retries against fresh state.
    """
    rule = RULES[cause]
    current = RequestState(row.state)
    new = target(cause, current)
    if new is None:
        raise PimError(ErrorCode.STATE,
                       f"Request {row.id} is {current.value.replace('_', ' ')}; it cannot be "
                       f"{cause.value.replace('_', ' ')}.", "status")
    # One lock order everywhere: the person's slot, then the request row, then the audit chain.
    await lock_slot(ctx, session, row.email, row.role)
    now = ctx.clock.now()
    row.state = new.value
    if new in DECISIONS:
        row.decided_at = now
        row.decided_by = actor if actor not in SYSTEM_ACTORS else (row.decided_by or actor)
    if new is RequestState.ACTIVE:
        row.granted_at = row.granted_at or now
    if is_terminal(new):
        row.ended_at = now
    if note:
        row.decision_note = note
    await session.flush()  # the compare-and-set
    _observe(session, row, current, new, now)
    await record(ctx, session, actor, rule.audit, row.role, outcome, request=row.id,
                 user=row.email, state=new.value, **({"reason": note} if note else {}),
                 once_key=f"request.ended:{row.id}" if is_terminal(new) else None, **detail)
    await _follow_up(ctx, session, row, current, new, rule.tell_requester, rule.announce)
    return new


async def _follow_up(ctx: Context, session: AsyncSession, row: RequestRow,
                     current: RequestState, new: RequestState, tell: bool,
                     announce: Announce) -> None:
    now = ctx.clock.now()
    if new is RequestState.ACTIVE:
        await schedule_expiry(ctx, session, row)
    if new is RequestState.APPROVED and row.kind != RequestKind.EXTENSION.value:
        starts = max(row.start_at, now)
        await schedule(session, JobKind.GRANT, starts, dedupe_key=f"grant:{row.id}",
                       request_id=row.id)
        tell = tell and starts > now  # otherwise the requester hears when access is granted
    if is_terminal(new):
        await release(ctx, session, row)
    channels = _channels(ctx, row)
    if ends_access(current, new):
        await notify_channels(session, now, channels, View.NOTICE, row.id, "ended")
    elif announce and not (announce is Announce.ACTIVATED
                           and row.kind == RequestKind.BREAKGLASS.value):
        await notify_channels(session, now, channels, View.NOTICE, row.id, announce.value)
    if tell:
        await notify_user(session, now, row.email, View.REQUESTER, row.id)
    await refresh_cards(session, now, row.id)


def _observe(session: AsyncSession, row: RequestRow, current: RequestState,
             new: RequestState, now: datetime) -> None:
    """Metrics, counted once the transaction commits (``pimbot.store.observations``)."""
    observe(session, Figure.REQUEST_MOVED, state=new.value)
    if current is RequestState.PENDING_APPROVAL:
        waited = max(0.0, (now - row.requested_at).total_seconds())
        observe(session, Figure.APPROVAL_WAITED, waited, outcome=new.value)


def _channels(ctx: Context, row: RequestRow) -> tuple[str, ...]:
    role = ctx.policy.roles.get(row.role)
    return role.notify if role else ()
