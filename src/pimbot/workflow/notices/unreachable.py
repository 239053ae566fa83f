"""Someone the bot cannot reach is reported, never skipped silently."""

from __future__ import annotations

import logging

from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.records import get_request
from pimbot.workflow.review_records import get_item

log = logging.getLogger(__name__)


async def report_unreachable(ctx: Context, email: str, request_id: str, view: View) -> None:
    """Tell the requester and the role's channels that ``email`` did not get a card."""
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


async def report_unreachable_reviewer(ctx: Context, email: str, item_id: str) -> None:
    """A reviewer nobody can reach is reported to the role's channels (or the admins)."""
    log.warning("cannot reach reviewer %s on any platform", email)
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
