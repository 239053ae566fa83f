"""Requests and grants a policy change left behind: ended, revoked with what was granted.

Runs after every ``policy apply`` and in every reconcile pass (at start, where ``run``
applies the policy, and every few minutes), against the policy in force.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.lifecycle import Cause, target
from pimbot.domain.states import OPEN_STATES, RequestState
from pimbot.policy.live_grants import affected_grants
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.holds import due_for_revoke, holders, lock_slot
from pimbot.workflow.lifecycle.transition import move


async def end_stranded(ctx: Context) -> int:
    """End every open request of a removed role and every hold of a grant the policy no
    longer matches; revoke those grants. Returns how many requests ended."""
    ended = 0
    async with ctx.db.transaction() as session:
        for affected in await affected_grants(session, ctx.policy):
            await lock_slot(ctx, session, affected.email, affected.role)
            grant = await session.get(GrantRow, affected.grant_id)
            if grant is None or grant.state != GrantState.GRANTED.value:
                continue  # a grant in flight is looked at again in the next pass
            for row in await holders(session, grant.id):
                await move(ctx, session, row, Cause.POLICY_CHANGED, actor="policy",
                           note=affected.why, grant=grant.id)
                ended += 1
            if grant.state == GrantState.GRANTED.value:  # no holder was left to release it
                await due_for_revoke(ctx, session, grant)
        gone = [name for name in await _roles_with_open_requests(session)
                if name not in ctx.policy.roles]
        for row in (await session.scalars(select(RequestRow).where(
                RequestRow.role.in_(gone),
                RequestRow.state.in_([s.value for s in OPEN_STATES])))).all():
            if target(Cause.POLICY_CHANGED, RequestState(row.state)) is not None:
                await move(ctx, session, row, Cause.POLICY_CHANGED, actor="policy",
                           note=f"role {row.role} was removed from the policy")
                ended += 1
    return ended


async def _roles_with_open_requests(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(RequestRow.role).distinct().where(
        RequestRow.state.in_([s.value for s in OPEN_STATES])))).all())
