"""Who may decide a request now, and an approval card drawn for one reader.

A platform that shows each reader their own version of a card (Teams' ``refresh.userIds``)
asks here whom to show the Approve / Deny buttons to; it never works that out itself. The
answer is the one the approval use case would give each of them if they pressed: the role's
approvers (with the escalation steps reached so far), less the requester and anyone who has
already answered, and nobody once the request is no longer waiting
(``domain.decisions.decide_approver``, the same function a press goes through).
"""

from __future__ import annotations

from dataclasses import replace

from pimbot.domain.decisions import decide_approver
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.states import RequestState
from pimbot.store.tables import RequestRow
from pimbot.ui.cards import Card
from pimbot.ui.views import View, render
from pimbot.workflow.audit import record_alone
from pimbot.workflow.context import Context
from pimbot.workflow.permissions import outsider
from pimbot.workflow.records import get_request, snapshot, votes_of

# The views whose buttons are for the deciders alone (``Card.deciders_only``).
DECIDER_VIEWS = frozenset({View.APPROVAL, View.APPROVER_REMINDER})


async def who_may_decide(ctx: Context, request_id: str) -> tuple[str, ...]:
    """The emails of everyone who may approve or deny ``request_id`` now, sorted."""
    async with ctx.db.read() as session:
        row = await session.get(RequestRow, request_id.strip().lower())
        if row is None or row.state != RequestState.PENDING_APPROVAL.value:
            return ()
        role = ctx.policy.roles.get(row.role)
        if role is None:
            return ()
        voted = frozenset(v.approver for v in await votes_of(session, row.id))
    candidates = sorted(set(ctx.policy.approvers_of(role, row.escalation)))
    return tuple(
        email for email in candidates
        if decide_approver(ctx.policy, role, row.email, email, voted, row.escalation).allowed)


async def card_for(ctx: Context, viewer: str, request_id: str, view: str) -> Card:
    """The card ``view`` of ``request_id`` as ``viewer`` should see it: with its buttons when
    they may decide it now, else the same card without them (its status). Someone with no
    part in the request (``permissions.outsider``: a forged refresh naming an id they saw)
    is refused, as an unknown id is: the platform shows them the card as it was sent to
    them, if any, and nothing of the request."""
    shown = View(view) if view in DECIDER_VIEWS else View.APPROVAL
    who = viewer.strip().lower()
    async with ctx.db.read() as session:
        row = await get_request(session, request_id)
        card = None if outsider(ctx.policy, who, row) else render(
            shown, await snapshot(session, ctx.policy, row))
    if card is None:  # audited, as an outsider's approve or deny is
        await record_alone(ctx, who, "card.refused", row.role, request=row.id,
                           reason="not_party", requester=row.email)
        raise PimError(ErrorCode.FORBIDDEN, f"You have no part in request {row.id}.")
    if card.actions and who in await who_may_decide(ctx, row.id):
        return card
    return replace(card, actions=(), deciders_only=None)
