"""A live grant's end at its provider, moved later when a hold on it outlasts that end.

pimbot revokes every grant itself, so most providers never hear of an end moving. Some targets
also end access by themselves at the end they were sent (``Extending``: Entra and Azure PIM
schedules, ``mode: pim``): when an extension is applied, or a later hold joins the grant
with an end after it, the ``extend_grant`` job tells the provider the latest end of the
grant's holds (no end if one of them has none), under the grant's lease like every provider
call, and records it as the grant's end. A provider that cannot be told (a missing permission,
say) is retried; once it gives up, the role's channels are told when the target will end the
access, so nobody is surprised by it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.ports import Extending
from pimbot.providers.errors import ProviderError
from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle import leases
from pimbot.workflow.lifecycle.failures import Failure, failure_of
from pimbot.workflow.lifecycle.grants import target_of
from pimbot.workflow.lifecycle.holds import holders
from pimbot.workflow.notices.outbox import JobKind, schedule

log = logging.getLogger(__name__)


async def schedule_grant_end(session: AsyncSession, now: datetime, grant_id: str) -> None:
    """Look at ``grant_id``'s end once this transaction commits (one queued look at a time:
    it reads the holds as they are when it runs)."""
    await schedule(session, JobKind.EXTEND_GRANT, now, dedupe_key=f"extend:{grant_id}",
                   grant_id=grant_id)


def held_until(holds: list[RequestRow]) -> tuple[bool, datetime | None]:
    """(any hold, the latest end of the holds; None when one has no end)."""
    ends = [hold.expires_at for hold in holds]
    if not ends:
        return False, None
    if any(end is None for end in ends):
        return True, None
    return True, max(end for end in ends if end is not None)


def later(end: datetime | None, sent: datetime | None) -> bool:
    """Is ``end`` after ``sent`` (None is no end: after every time)?"""
    if sent is None:
        return False
    return end is None or end > sent


async def push_grant_end(ctx: Context, job: ClaimedJob) -> None:
    grant_id = str(job.payload["grant_id"])
    async with ctx.db.transaction() as session:
        row = await session.get(GrantRow, grant_id, with_for_update=True)
        if row is None or row.state != GrantState.GRANTED.value:
            return  # ended, or still being granted (the grant call sends the end known then)
        provider = ctx.providers.get(row.provider)
        if not isinstance(provider, Extending):
            return
        held, end = held_until(await holders(session, grant_id))
        if not held or not later(end, row.expires_at):
            return
        token = leases.take(ctx, row)  # SlotBusy: a grant or revoke call is in flight
        target, ref, sent = replace(target_of(row), expires_at=end), row.ref, row.expires_at
        name = row.provider
    try:
        new_ref = await leases.call_under_lease(ctx, grant_id, token,
                                                lambda: provider.extend(target, ref), name)
    except Exception as exc:
        await leases.release(ctx, grant_id, token)
        final = isinstance(exc, ProviderError) and not exc.retryable
        if final or job.attempts + 1 >= job.max_attempts:
            await _failed(ctx, grant_id, sent, failure_of(exc, "extend"))
            return
        raise
    async with ctx.db.transaction() as session:
        row = await leases.fenced(ctx, session, grant_id, token)
        row.expires_at = end
        if new_ref is not None:
            row.ref = new_ref
        await record(ctx, session, "pimbot", "grant.extended", row.role, grant=row.id,
                     user=row.email, expires_at=end.isoformat() if end else None)


async def _failed(ctx: Context, grant_id: str, sent: datetime | None, failure: Failure) -> None:
    log.warning("could not move the end of grant %s at its provider (error %s): %s",
                grant_id, failure.error_id, failure.detail)
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await session.get(GrantRow, grant_id)
        assert row is not None
        await record(ctx, session, "pimbot", "grant.extend_failed", row.role, "failed",
                     grant=row.id, user=row.email, error=failure.detail,
                     error_id=failure.error_id)
        role = ctx.policy.roles.get(row.role)
        audiences = [f"channel:{c}" for c in role.notify] if role and role.notify else \
            [f"user:{admin}" for admin in ctx.policy.admins]
        until = f"{sent:%Y-%m-%d %H:%M} UTC" if sent else "the end it was first sent"
        for audience in audiences:
            await schedule(session, JobKind.NOTIFY, now, audience=audience,
                           view=View.PROBLEM.value, request_id=row.activation_id,
                           title=f"{row.email}'s {row.role} access may end early",
                           text=f"The provider will end it at {until}: pimbot could not move "
                                f"that end ({failure.shown}).")
