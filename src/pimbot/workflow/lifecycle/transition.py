"""The one mechanism that changes a request's state, driven by ``pimbot.domain.lifecycle``.

``move`` checks the transition against the table, sets it (a compare-and-set on the row's
version at flush), writes the audit event, and writes every follow-up in the same
transaction: the grant or expiry job, the release of the grant the request held, the notices
and the card redraw. Every path that changes a request's state goes through here, so "what
happens when a request ends" has one answer whatever ended it: an activation that ends
(deactivated, expired, revoked, ...) also withdraws the extension requests still waiting for
approval on it (``Cause.PARENT_ENDED``), so no approver can approve time on ended access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.lifecycle import DECISIONS, RULES, Announce, Cause, ends_access, target
from pimbot.domain.states import RequestKind, RequestState, is_terminal
from pimbot.store.observations import Figure, observe
from pimbot.store.tables import GrantRow, RequestRow
from pimbot.store.versioned import set_each, write_row
from pimbot.ui.views import View
from pimbot.workflow.audit import AuditBatch, record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.expiry import expiry_jobs, schedule_expiry
from pimbot.workflow.lifecycle.holds import lock_slot, lock_slots, release, release_many
from pimbot.workflow.notices.outbox import JobKind, PendingJobs

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
    new = _target(row, cause)
    # One lock order everywhere: the person's slot, then the request row, then the audit chain.
    await lock_slot(ctx, session, row.email, row.role)
    now = ctx.clock.now()
    _set_state(row, new, now, actor, note)
    await write_row(session, row)  # the compare-and-set (a flush of this row)
    _observe(session, row, current, new, now)
    await record(ctx, session, actor, rule.audit, row.role, outcome, request=row.id,
                 user=row.email, state=new.value, **({"reason": note} if note else {}),
                 once_key=f"request.ended:{row.id}" if is_terminal(new) else None, **detail)
    await _follow_up(ctx, session, row, current, new, rule.tell_requester, rule.announce)
    if ends_access(current, new):
        await _withdraw_extensions(ctx, session, [(row, new)], actor)
    return new


def _target(row: RequestRow, cause: Cause) -> RequestState:
    current = RequestState(row.state)
    new = target(cause, current)
    if new is None:
        raise PimError(ErrorCode.STATE,
                       f"Request {row.id} is {current.value.replace('_', ' ')}; it cannot be "
                       f"{cause.value.replace('_', ' ')}.", "status")
    return new


def _set_state(row: RequestRow, new: RequestState, now: datetime, actor: str,
               note: str) -> None:
    for key, value in _changes(row, new, now, actor, note).items():
        setattr(row, key, value)


def _changes(row: RequestRow, new: RequestState, now: datetime, actor: str,
             note: str) -> dict[str, Any]:
    """What moving ``row`` to ``new`` writes (its columns' new values)."""
    changes: dict[str, Any] = {"state": new.value}
    if new in DECISIONS:
        changes["decided_at"] = now
        changes["decided_by"] = actor if actor not in SYSTEM_ACTORS else (
            row.decided_by or actor)
    if new is RequestState.ACTIVE:
        changes["granted_at"] = row.granted_at or now
    if is_terminal(new):
        changes["ended_at"] = now
    if note:
        changes["decision_note"] = note
    return changes


async def move_many(ctx: Context, session: AsyncSession, rows: Sequence[RequestRow],
                    cause: Cause, *, revoke_at: datetime | None = None, actor: str = "pimbot",
                    outcome: str = "ok",
                    details: Mapping[str, Mapping[str, Any]] | None = None) -> list[GrantRow]:
    """``move`` for many requests and one cause (an expiry burst; a burst of grants), with
    the same checks, audit events and follow-ups, in a few statements whatever their number:
    every slot locked in one statement, one compare-and-set statement, the audit events appended
    together, the releases and the outbox written in bulk. ``details``: each request's extra
    audit detail, by id. ``revoke_at``: when the revoke jobs are due (see ``release_many``).
    Returns the grants now due for revoke. Only causes that end requests or make them
    active are taken (the others' follow-ups are ``move``'s alone).

    Raises PimError(STATE) when the cause does not apply to one of them, and StaleDataError
    when one changed meanwhile: the caller then moves them one by one.
    """
    rule = RULES[cause]
    moves = [(row, RequestState(row.state), _target(row, cause)) for row in rows]
    if not all(is_terminal(new) or new is RequestState.ACTIVE for _, _, new in moves):
        raise ValueError("move_many ends requests or makes them active; use move otherwise")
    await lock_slots(ctx, session, [(row.email, row.role) for row in rows])
    now = ctx.clock.now()
    # The compare-and-set of every row, in one statement (``store.versioned``).
    await set_each(session, [(row, _changes(row, new, now, actor, "")) for row, _, new in moves])
    audit, jobs = AuditBatch(ctx), PendingJobs()
    for row, current, new in moves:
        _observe(session, row, current, new, now)
        audit.add(actor, rule.audit, row.role, outcome, request=row.id, user=row.email,
                  state=new.value,
                  once_key=f"request.ended:{row.id}" if is_terminal(new) else None,
                  **dict((details or {}).get(row.id, {})))
    ended = [row for row, _, new in moves if is_terminal(new)]
    due = await release_many(ctx, session, ended, audit, jobs, revoke_at) if ended else []
    for row, current, new in moves:
        if new is RequestState.ACTIVE:
            expiry_jobs(ctx, jobs, row)
        _notices(ctx, jobs, now, row, current, new, rule.tell_requester, rule.announce)
    await audit.write(session)
    await jobs.write(session)
    await _withdraw_extensions(ctx, session, [(row, new) for row, current, new in moves
                                              if ends_access(current, new)], actor)
    return due


async def _withdraw_extensions(ctx: Context, session: AsyncSession,
                               ended: Sequence[tuple[RequestRow, RequestState]],
                               actor: str) -> None:
    """Cancel the extension requests still waiting for approval on activations that just
    ended (one query for a batch; none when no role of the batch asks for approval, since
    only those roles' extensions wait)."""
    parents = {row.id: new for row, new in ended if row.kind != RequestKind.EXTENSION.value
               and _needs_approval(ctx, row.role)}
    if not parents:
        return
    waiting = (await session.execute(select(RequestRow).where(
        RequestRow.state == RequestState.PENDING_APPROVAL.value,
        RequestRow.kind == RequestKind.EXTENSION.value,
        RequestRow.parent_id.in_(sorted(parents))).order_by(RequestRow.id))).scalars().all()
    for ext in waiting:
        parent = ext.parent_id or ""
        await move(ctx, session, ext, Cause.PARENT_ENDED, actor=actor,
                   note=f"the activation it extends ({parent}) was {parents[parent].value}",
                   parent=parent)


def _needs_approval(ctx: Context, role_name: str) -> bool:
    role = ctx.policy.roles.get(role_name)
    return role is None or role.approval.required


async def _follow_up(ctx: Context, session: AsyncSession, row: RequestRow,
                     current: RequestState, new: RequestState, tell: bool,
                     announce: Announce) -> None:
    now = ctx.clock.now()
    jobs = PendingJobs()  # the grant job and the notices: one multi-row INSERT
    if new is RequestState.ACTIVE:
        await schedule_expiry(ctx, session, row)
    if new is RequestState.APPROVED and row.kind != RequestKind.EXTENSION.value:
        starts = max(row.start_at, now)
        jobs.schedule(JobKind.GRANT, starts, dedupe_key=f"grant:{row.id}", request_id=row.id)
        tell = tell and starts > now  # otherwise the requester hears when access is granted
    if is_terminal(new):
        await release(ctx, session, row)
    _notices(ctx, jobs, now, row, current, new, tell, announce)
    await jobs.write(session)


def _notices(ctx: Context, jobs: PendingJobs, now: datetime, row: RequestRow,
             current: RequestState, new: RequestState, tell: bool,
             announce: Announce) -> None:
    """The channels' notice, the requester's, and the redraw of every copy of its cards."""
    channels = _channels(ctx, row)
    if ends_access(current, new):
        jobs.notify_channels(now, channels, View.NOTICE, row.id, "ended")
    elif announce and not (announce is Announce.ACTIVATED
                           and row.kind == RequestKind.BREAKGLASS.value):
        jobs.notify_channels(now, channels, View.NOTICE, row.id, announce.value)
    if tell:
        jobs.notify_user(now, row.email, View.REQUESTER, row.id)
    jobs.refresh_cards(now, row.id)


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
