"""Delivering outbox notifications and redrawing every sent copy of a card."""

from __future__ import annotations

import logging

from pimbot.ports import Unreachable
from pimbot.scheduling.queue import ClaimedJob
from pimbot.ui.views import View, info_card, problem_card, render
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.delivery import Delivery
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.records import get_request, snapshot

log = logging.getLogger(__name__)


async def deliver(ctx: Context, job: ClaimedJob) -> None:
    payload = job.payload
    audience: str = payload["audience"]
    view = View(payload["view"])
    now = ctx.clock.now()
    delivery = Delivery(ctx.db, ctx.gateways)
    if view in (View.PROBLEM, View.INFO):
        draw = problem_card if view is View.PROBLEM else info_card
        card = draw(payload.get("title", "pimbot"), payload.get("text", ""))
        request_id = payload.get("request_id", "")
        platform, drawn_version = payload.get("platform", ""), 0
    else:
        async with ctx.db.read() as session:
            row = await get_request(session, payload["request_id"])
            card = render(view, await snapshot(session, ctx.policy, row), payload.get("event", ""))
        request_id, platform, drawn_version = row.id, row.platform, row.version
    if audience.startswith("user:"):
        email = audience.removeprefix("user:")
        try:
            sent = await delivery.to_user(email, card, prefer=platform)
        except Unreachable:
            await _report_unreachable(ctx, email, request_id, view)
            return
    else:
        maybe = await delivery.to_channel(audience.removeprefix("channel:"), card)
        if maybe is None:
            return
        sent = maybe
    await delivery.remember(request_id, view.value, audience, sent, now)
    if view not in (View.PROBLEM, View.INFO):
        await _redraw_if_changed(ctx, request_id, drawn_version)


async def _redraw_if_changed(ctx: Context, request_id: str, drawn_version: int) -> None:
    """The request may have changed while this card was on its way (a slow send, a 429):
    its copy was not stored yet when the other copies were redrawn, so redraw them again."""
    async with ctx.db.read() as session:
        row = await get_request(session, request_id)
    if row.version != drawn_version:
        async with ctx.db.transaction() as session:
            await schedule(session, JobKind.REFRESH_CARDS, ctx.clock.now(),
                           request_id=request_id)


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
    """Redraw every copy of the cards sent about a request from its current state."""
    delivery = Delivery(ctx.db, ctx.gateways)
    copies = await delivery.sent_copies(job.payload["request_id"])
    if not copies:
        return
    async with ctx.db.read() as session:
        row = await get_request(session, job.payload["request_id"])
        current = await snapshot(session, ctx.policy, row)
    for copy in copies:
        await delivery.update(copy, render(View(copy.view), current))
