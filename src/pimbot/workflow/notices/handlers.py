"""Delivering outbox notifications and redrawing every sent copy of a card."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.ports import Unreachable
from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.tables import RequestRow, ReviewItemRow
from pimbot.ui.cards import Card
from pimbot.ui.review_views import review_item_card, review_list_card, review_notice_card
from pimbot.ui.views import RequestSnapshot, View, info_card, problem_card, render
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.delivery import UPDATABLE_VIEWS, Delivery
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.records import get_request, snapshot
from pimbot.workflow.review_records import get_item, item_snapshot, waiting_for

log = logging.getLogger(__name__)


REVIEW_VIEWS = frozenset({View.REVIEW_ITEM, View.REVIEW_LIST, View.REVIEW_NOTICE})


async def _draw(ctx: Context, view: View, payload: dict[str, Any]
                ) -> tuple[Card, str, str, int | None]:
    """The card for a notice: (card, subject id, the request's platform, the version drawn;
    None when the card is never redrawn)."""
    subject = str(payload.get("request_id", ""))
    if view in (View.PROBLEM, View.INFO):
        draw = problem_card if view is View.PROBLEM else info_card
        return draw(payload.get("title", "pimbot"), payload.get("text", "")), subject, \
            str(payload.get("platform", "")), None
    if view is View.REVIEW_NOTICE:
        return review_notice_card(payload.get("title", "pimbot"), payload.get("text", "")), \
            subject, "", None
    async with ctx.db.read() as session:
        return await _draw_from(ctx, session, view, payload, {})


async def _draw_from(ctx: Context, session: AsyncSession, view: View, payload: dict[str, Any],
                     seen: dict[str, tuple[RequestRow, RequestSnapshot]]
                     ) -> tuple[Card, str, str, int | None]:
    """``_draw`` for the views read from the database, in the caller's read; ``seen`` keeps
    the requests already read in it (every copy of one request's cards is drawn from one
    read of it and its votes)."""
    subject = str(payload.get("request_id", ""))
    if view is View.REVIEW_LIST:
        items, total = await waiting_for(session, str(payload["reviewer"]))
        return review_list_card(items, total), subject, "", None
    if view is View.REVIEW_ITEM:
        item = await get_item(session, subject)
        return review_item_card(await item_snapshot(session, item)), item.id, "", item.version
    if subject not in seen:
        row = await get_request(session, subject)
        seen[subject] = row, await snapshot(session, ctx.policy, row)
    row, view_of = seen[subject]
    card = render(view, view_of, payload.get("event", ""))
    return card, row.id, row.platform, row.version


async def deliver(ctx: Context, job: ClaimedJob) -> None:
    payload = job.payload
    audience: str = payload["audience"]
    view = View(payload["view"])
    now = ctx.clock.now()
    delivery = Delivery(ctx.db, ctx.gateways)
    card, request_id, platform, drawn_version = await _draw(ctx, view, payload)
    if audience.startswith("user:"):
        email = audience.removeprefix("user:")
        try:
            sent = await delivery.to_user(email, card, prefer=platform)
        except Unreachable:
            if view in REVIEW_VIEWS:
                log.warning("cannot reach reviewer %s on any platform", email)
                await _report_unreachable_reviewer(ctx, email, request_id)
            else:
                await _report_unreachable(ctx, email, request_id, view)
            return
    else:
        channel = audience.removeprefix("channel:")
        try:
            maybe = await delivery.to_channel(channel, card)
        except Unreachable as gone:  # e.g. pimbot was removed from its team: do not retry
            log.warning("cannot post to channel %s: %s", channel, gone)
            return
        if maybe is None:
            return
        sent = maybe
    if view.value not in UPDATABLE_VIEWS:
        return
    async with ctx.db.transaction() as session:
        delivery.remember_in(session, request_id, view.value, audience, sent, now)
        if drawn_version is not None:
            await _redraw_if_changed(session, view, request_id, drawn_version, now)


async def _redraw_if_changed(session: AsyncSession, view: View, subject_id: str,
                             drawn_version: int, now: datetime) -> None:
    """The subject may have changed while this card was on its way (a slow send, a 429):
    its copy was not stored yet when the other copies were redrawn, so redraw them again.
    Asked in the transaction that stores the copy, with the subject's row locked
    (PostgreSQL): a change either committed before (its version is seen here) or waits for
    this commit (its own redraw then finds the copy)."""
    table: type[RequestRow] | type[ReviewItemRow] = (
        ReviewItemRow if view is View.REVIEW_ITEM else RequestRow)
    version = await session.scalar(
        select(table.version).where(table.id == subject_id).with_for_update())
    if version != drawn_version:
        await schedule(session, JobKind.REFRESH_CARDS, now, request_id=subject_id)


async def _report_unreachable(ctx: Context, email: str, request_id: str, view: View) -> None:
    """Someone the bot cannot reach is reported, never skipped silently."""
    log.warning("cannot reach %s on any platform (request %s)", email, request_id)
    if view in (View.PROBLEM, View.INFO) or not request_id:
        return
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        await record(ctx, session, "pimbot", "notify.unreachable", row.role, "failed",
                     request=row.id, user=email)
        title = f"pimbot could not reach {email}"
        text = (f"{email} was not found on any connected chat platform, so they did not get "
                f"the message about request {row.id} ({row.role}).")
        targets = [] if email == row.email else [f"user:{row.email}"]
        role = ctx.policy.roles.get(row.role)
        targets += [f"channel:{c}" for c in (role.notify if role else ())]
        for target in targets:
            await schedule(session, JobKind.NOTIFY, now, audience=target,
                           view=View.PROBLEM.value, request_id=row.id, title=title, text=text)


async def refresh(ctx: Context, job: ClaimedJob) -> None:
    """Redraw every copy of the cards sent about a request (or a review item) from its
    current state."""
    delivery = Delivery(ctx.db, ctx.gateways)
    async with ctx.db.read() as session:
        copies = await delivery.sent_copies_in(session, job.payload["request_id"])
        seen: dict[str, tuple[RequestRow, RequestSnapshot]] = {}
        cards = [(await _draw_from(ctx, session, View(copy.view),
                                   {"request_id": copy.subject_id}, seen))[0]
                 for copy in copies]
    for copy, card in zip(copies, cards, strict=True):
        await delivery.update(copy, card)


async def _report_unreachable_reviewer(ctx: Context, email: str, item_id: str) -> None:
    """A reviewer nobody can reach is reported to the role's channels (or the admins)."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        role = ""
        if item_id:
            role = (await get_item(session, item_id)).role
        await record(ctx, session, "pimbot", "notify.unreachable", role, "failed",
                     item=item_id, user=email)
        found = ctx.policy.roles.get(role)
        targets = [f"channel:{c}" for c in (found.notify if found else ())] or [
            f"user:{a}" for a in ctx.policy.admins if a != email]
        for target in targets:
            await schedule(session, JobKind.NOTIFY, now, audience=target,
                           view=View.PROBLEM.value, request_id="",
                           title=f"pimbot could not reach reviewer {email}",
                           text=f"{email} was not found on any connected chat platform, so "
                                "they did not get their access-review prompt.")
