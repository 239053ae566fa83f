"""Ending requests early: deactivate (active access) and cancel (a waiting request)."""

from __future__ import annotations

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.lifecycle import Cause
from pimbot.domain.states import RequestKind, RequestState
from pimbot.ui.cards import Reply
from pimbot.ui.views import requester_card
from pimbot.workflow.actor import Actor
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.permissions import owned
from pimbot.workflow.records import open_requests, snapshot
from pimbot.workflow.turns import first_seen

_ENDABLE = frozenset({RequestState.ACTIVE.value, RequestState.APPROVED.value})


async def deactivate(ctx: Context, actor: Actor, role_name: str | None,
                     request_id: str | None = None) -> Reply:
    """End access now: one request (a button), or every activation of a role (by name), so
    that no overlapping activation keeps the grant after the person asked to drop it."""
    async with ctx.db.transaction() as session:
        if request_id is not None:
            rows = [await owned(ctx, session, actor, request_id, "deactivation")]
        else:
            role = ctx.role(role_name, lambda r: f"deactivate {r.name}")
            rows = [r for r in await open_requests(
                session, email=actor.email, role=role.name,
                states=frozenset({RequestState.ACTIVE, RequestState.APPROVED}))
                if r.kind in {RequestKind.ACTIVATION.value, RequestKind.BREAKGLASS.value}]
            if not rows:
                raise PimError(ErrorCode.STATE, f"You have no active {role.name} access.",
                               "status")
        for row in rows:
            await move(ctx, session, row, Cause.DEACTIVATED, actor=actor.email)
        view = await snapshot(session, ctx.policy, rows[-1])
    what = rows[-1].role if len(rows) == 1 else f"{len(rows)} activations of {rows[-1].role}"
    return Reply(text=f"Deactivated {what}; removing access at the provider.",
                 card=requester_card(view), subject=rows[-1].id)


async def cancel(ctx: Context, actor: Actor, request_id: str) -> Reply:
    async with ctx.db.transaction() as session:
        row = await owned(ctx, session, actor, request_id, "cancellation")
        if first_seen(row.id, row.state) != row.state:
            # This turn is a retry: the request was decided while the cancel was on its way
            # (it lost the race); answer with what happened instead of undoing it.
            raise PimError(ErrorCode.STATE,
                           f"Request {row.id} was {row.state.replace('_', ' ')} at the same "
                           "moment; nothing was cancelled.",
                           f"deactivate {row.role}" if row.state in _ENDABLE else "status")
        if row.state not in {RequestState.PENDING_APPROVAL.value, RequestState.APPROVED.value} \
                or (row.kind == RequestKind.EXTENSION.value
                    and row.state == RequestState.APPROVED.value):
            raise PimError(ErrorCode.STATE,
                           f"Request {row.id} is {row.state.replace('_', ' ')}; only waiting "
                           "requests can be cancelled.",
                           f"deactivate {row.role}" if row.state == "active" else "status")
        await move(ctx, session, row, Cause.CANCELLED, actor=actor.email)
        view = await snapshot(session, ctx.policy, row)
    return Reply(text=f"Cancelled request {row.id}.", card=requester_card(view),
                 subject=row.id)
