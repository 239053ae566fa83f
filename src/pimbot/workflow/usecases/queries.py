"""Read-only answers: roles, status, pending, whois, audit, and the App Home's cards."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.commands.suggest import suggest
from pimbot.domain.durations import format_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.model import AssignmentType
from pimbot.domain.states import RequestState
from pimbot.domain.times import resolve_when
from pimbot.store.audit_search import search_events
from pimbot.store.tables import AssignmentRow, GrantRow, GrantState, RequestRow, VoteRow
from pimbot.ui.cards import ActionId, Button, ButtonStyle, Card, Reply
from pimbot.ui.quoting import quote
from pimbot.ui.review_views import review_list_card
from pimbot.ui.views import approval_card, requester_card
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record_alone
from pimbot.workflow.context import Context
from pimbot.workflow.records import eligible_roles, open_requests, snapshot
from pimbot.workflow.review_records import waiting_for as reviews_waiting_for

PENDING_SHOWN = 20  # approval requests listed by ``pending`` (and on the App Home)
AUDIT_SHOWN = 25  # events listed by ``audit``


def _left(until: datetime | None, now: datetime) -> str:
    if until is None:
        return "no end"
    return f"{format_duration(until - now)} left" if until > now else "ending now"


async def roles(ctx: Context, actor: Actor) -> Reply:
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        eligible = await eligible_roles(session, actor.email, now)
        active = await open_requests(session, email=actor.email,
                                     states=frozenset({RequestState.ACTIVE}))
    lines = ["Your eligible roles:" if eligible else "You are not eligible for any role."]
    for name in eligible:
        role = ctx.policy.roles.get(name)
        if role is None:
            continue
        rules = [f"max {format_duration(role.max_duration)}"]
        if role.approval.required:
            rules.append("needs approval")
        if role.require_mfa:
            rules.append("needs MFA")
        if role.require_ticket is not False:
            rules.append("needs a ticket")
        lines.append(f"• {name} — {role.description or 'no description'} ({', '.join(rules)})")
    if active:
        lines.append("Active now:")
        lines += [f"• {r.role} ({_left(r.expires_at, now)}, request {r.id})" for r in active]
    return Reply(text="\n".join(lines))


async def status(ctx: Context, actor: Actor) -> Reply:
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        rows = await open_requests(session, email=actor.email)
        pending_revokes = await revoke_pending(session, actor.email)
        lines = [] if rows or pending_revokes else [
            "You have no open requests and no active roles."]
        for row in rows:
            if row.state == RequestState.ACTIVE.value:
                lines.append(f"• {row.role}: active, {_left(row.expires_at, now)} "
                             f"(request {row.id})")
            elif row.state == RequestState.PENDING_APPROVAL.value:
                view = await snapshot(session, ctx.policy, row)
                lines.append(f"• {row.role}: waiting for approval, {view.approvals} of "
                             f"{row.min_approvals} (request {row.id})")
            else:
                lines.append(f"• {row.role}: approved, starts {row.start_at:%Y-%m-%d %H:%M} UTC "
                             f"(request {row.id})")
        lines += [revoke_pending_line(grant, row) for grant, row in pending_revokes]
    return Reply(text="\n".join(lines))


async def revoke_pending(session: AsyncSession,
                         email: str) -> list[tuple[GrantRow, RequestRow | None]]:
    """The person's grants that ended but whose revoke the provider has not confirmed yet,
    with the request that made each (the grant's activation)."""
    grants = (await session.execute(select(GrantRow).where(
        GrantRow.email == email, GrantRow.state == GrantState.REVOKING.value).order_by(
        GrantRow.revoke_due_at))).scalars().all()
    return [(g, await session.get(RequestRow, g.activation_id)) for g in grants]


def revoke_pending_line(grant: GrantRow, row: RequestRow | None) -> str:
    """``status``: access ended, the provider has not confirmed its removal yet."""
    line = f"• {grant.role}: ended, revoke pending at the provider"
    if grant.failures:
        why = f": {row.failure}" if row is not None and row.failure else ""
        line += f" ({grant.failures} failed attempt(s){why}; pimbot keeps retrying)"
    return line + (f" (request {row.id})" if row is not None else "")


async def pending(ctx: Context, actor: Actor) -> Reply:
    cards, total = await _waiting(ctx, actor, PENDING_SHOWN)
    if not cards:
        return Reply(text="Nothing is waiting for your approval.")
    lines = [f"{total} request(s) waiting for you:"]
    lines += [f"• {card.title} ({card.context})" for card in cards]
    if total > len(cards):
        lines.append(f"… and {total - len(cards)} more (the oldest are shown first).")
    return Reply(text="\n".join(lines), card=cards[0] if total == 1 else None)


async def waiting_for(ctx: Context, actor: Actor, limit: int = PENDING_SHOWN) -> list[Card]:
    """Approval cards of the oldest requests waiting for ``actor`` (at most ``limit``)."""
    cards, _ = await _waiting(ctx, actor, limit)
    return cards


async def _waiting(ctx: Context, actor: Actor, limit: int) -> tuple[list[Card], int]:
    """The requests ``actor`` may approve and has not voted on, oldest first: cards of the
    first ``limit`` and how many there are. The database filters by the roles the person
    approves (the policy says which), so the cost follows the answer, not the queue."""
    where = _waiting_where(ctx, actor)
    if where is None:
        return [], 0
    async with ctx.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(RequestRow).where(*where))
        rows = (await session.scalars(select(RequestRow).where(*where).order_by(
            RequestRow.requested_at, RequestRow.id).limit(limit))).all()
        votes: dict[str, list[VoteRow]] = {row.id: [] for row in rows}
        for vote in (await session.scalars(select(VoteRow).where(
                VoteRow.request_id.in_(list(votes))).order_by(VoteRow.at))).all():
            votes[vote.request_id].append(vote)  # one query for the page, not one a card
        cards = [approval_card(await snapshot(session, ctx.policy, row, votes[row.id]))
                 for row in rows]
    return cards, int(total or 0)


def _waiting_where(ctx: Context, actor: Actor) -> tuple[ColumnElement[bool], ...] | None:
    """What selects the requests ``actor`` may approve and has not voted on (None: none):
    of the roles they approve, and of those whose escalation steps name them, once a request
    has escalated that far."""
    roles: list[str] = []
    escalated: list[ColumnElement[bool]] = []
    for name, role in ctx.policy.roles.items():
        level = next((step for step in range(len(role.escalate) + 1)
                      if actor.email in ctx.policy.approvers_of(role, step)), None)
        if level == 0:
            roles.append(name)
        elif level is not None:
            escalated.append(and_(RequestRow.role == name, RequestRow.escalation >= level))
    if not roles and not escalated:
        return None
    voted = select(VoteRow.request_id).where(VoteRow.request_id == RequestRow.id,
                                             VoteRow.approver == actor.email)
    of_roles = RequestRow.role.in_(roles) if not escalated else or_(
        RequestRow.role.in_(roles), *escalated)
    return (RequestRow.state == RequestState.PENDING_APPROVAL.value,
            of_roles, RequestRow.email != actor.email, ~voted.exists())


async def oldest_waiting_id(ctx: Context, actor: Actor) -> str | None:
    """The id of the oldest request waiting for ``actor``'s decision, if any."""
    where = _waiting_where(ctx, actor)
    if where is None:
        return None
    async with ctx.db.read() as session:
        return await session.scalar(select(RequestRow.id).where(*where).order_by(
            RequestRow.requested_at, RequestRow.id).limit(1))


async def whois(ctx: Context, actor: Actor, role_name: str) -> Reply:
    role = ctx.role(role_name, lambda r: f"whois {r.name}")
    if not ctx.policy.may_see_holders(actor.email, role):
        await record_alone(ctx, actor.email, "whois.refused", role.name, reason="not_privileged")
        raise PimError(ErrorCode.FORBIDDEN,
                       f"Only admins, auditors and the approvers of {role.name} can see who "
                       "holds it.", "roles")
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        holders = await open_requests(session, role=role.name,
                                      states=frozenset({RequestState.ACTIVE}))
        eligible = (await session.execute(select(AssignmentRow.email).where(
            AssignmentRow.role == role.name, AssignmentRow.removed_at.is_(None),
            AssignmentRow.type == AssignmentType.ELIGIBLE.value))).scalars().all()
    if not holders:
        text = f"Nobody holds {role.name} right now."
    else:
        lines = [f"{role.name} is held by:"]
        lines += [f"• {r.email} ({r.kind}, {_left(r.expires_at, now)}, request {r.id})"
                  for r in holders]
        text = "\n".join(lines)
    return Reply(text=f"{text}\nEligible: {', '.join(sorted(set(eligible))) or 'nobody'}.")


# A detail value shown bare: an id, an email, a time, a duration, a number. Anything else
# (a reason, a comment: what people typed) is shown as a quotation on one line, so it cannot
# end the event's line, start a forged one, or pass for another of its fields.
_PLAIN_VALUE = re.compile(r"[\w@.:+/#-]{1,200}", re.ASCII)
# An underscore at a word's edge (``_x_``) italicises in Slack's mrkdwn; inside a word
# (``first_last``) it formats nothing.
_EDGE_UNDERSCORE = re.compile(r"(?:^|[^A-Za-z0-9])_|_(?:[^A-Za-z0-9]|$)")


def _detail_value(value: object) -> str:
    """A detail as the audit answer shows it. A record (a role's whole spec before and after
    a policy change) is left to ``pimbot audit export``: its event says what changed in
    pimbot's words (``change=require_mfa: false → true``), never as a Python dict."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_detail_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    bare = _PLAIN_VALUE.fullmatch(text) and not _EDGE_UNDERSCORE.search(text)
    return text if bare else quote(text)


async def audit(ctx: Context, actor: Actor, subject: str | None, since: str | None) -> Reply:
    if not (ctx.policy.is_admin(actor.email) or ctx.policy.is_auditor(actor.email)):
        await record_alone(ctx, actor.email, "audit.refused", subject or "", reason="not_auditor")
        raise PimError(ErrorCode.FORBIDDEN, "Only admins and auditors can read the audit log.",
                       "help audit")
    now = ctx.clock.now()
    since_at = resolve_when(since, now) if since else None
    events = await search_events(ctx.db, subject=subject, since=since_at, limit=AUDIT_SHOWN)
    if not events:
        _check_subject(ctx, subject)
        return Reply(text="No audit events match.")
    lines = [f"Last {len(events)} audit event(s){' for ' + subject if subject else ''}:"]
    for event in events:
        detail = ", ".join(f"{k}={_detail_value(v)}" for k, v in sorted(event.detail.items())
                           if v not in (None, "") and not isinstance(v, dict))
        lines.append(f"#{event.seq} {event.at:%Y-%m-%d %H:%M:%S} {event.actor} {event.action} "
                     f"{event.subject} [{event.outcome}] {detail}".rstrip())
    return Reply(text="\n".join(lines))


def _check_subject(ctx: Context, subject: str | None) -> None:
    """An ``audit`` subject that matched nothing and names no person or role (``audit bob``)
    is a slip, not an empty log: say so, with a did-you-mean. (A role no longer in the
    policy, or anyone with an email, may simply have no events.)"""
    if subject is None or "@" in subject or subject.startswith("<@") \
            or subject in ctx.policy.roles:
        return
    close = suggest(subject, (*ctx.policy.roles, *ctx.policy.people()))
    message = f"There is no person or role called '{subject}'"
    if close is None:
        raise PimError(ErrorCode.UNKNOWN_ROLE, f"{message}; audit takes an email or a role.",
                       "audit bob@example.com")
    raise PimError(ErrorCode.UNKNOWN_ROLE, f"{message}. Did you mean '{close}'?",
                   f"audit {close}")


async def home(ctx: Context, actor: Actor) -> list[Card]:
    """The App Home / dashboard: eligible roles, my active and open requests, approvals."""
    now = ctx.clock.now()
    cards: list[Card] = []
    async with ctx.db.read() as session:
        eligible = await eligible_roles(session, actor.email, now)
        mine: list[RequestRow] = await open_requests(session, email=actor.email)
        for row in mine:
            cards.append(requester_card(await snapshot(session, ctx.policy, row)))
        for grant, ended in await revoke_pending(session, actor.email):
            if ended is not None:  # ended, and the provider has not confirmed the revoke
                cards.append(requester_card(await snapshot(session, ctx.policy, ended),
                                            revoke_failures=grant.failures))
    for name in eligible:
        role = ctx.policy.roles.get(name)
        if role is not None:
            cards.append(Card(title=name, text=role.description,
                              actions=(Button("Activate", ActionId.ACTIVATE, name,
                                              ButtonStyle.PRIMARY),)))
    cards += await waiting_for(ctx, actor)
    async with ctx.db.read() as session:
        items, total = await reviews_waiting_for(session, actor.email)
    if total:
        cards.append(review_list_card(items, total))
    return cards
