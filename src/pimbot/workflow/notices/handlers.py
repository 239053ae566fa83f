"""Delivering outbox notifications and redrawing every sent copy of a card, a claimed group of
them at once: the requests, votes and sent copies they are drawn from are read with one query
each, the sends and updates are made concurrently (each platform's gateway paces its own
calls), and the copies the sends leave are stored in one transaction. Each job keeps its own
outcome: one that fails is retried alone, with its backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.ports import SentMessage, Unreachable
from pimbot.scheduling.queue import ClaimedJob
from pimbot.store import prepared
from pimbot.store.prepared_load import PreparedLoad, load
from pimbot.store.tables import MessageRow, RequestRow, ReviewItemRow, VoteRow
from pimbot.ui.cards import Card
from pimbot.ui.review_views import review_item_card, review_list_card, review_notice_card
from pimbot.ui.views import RequestSnapshot, View, info_card, problem_card, render
from pimbot.workflow.context import Context
from pimbot.workflow.notices.delivery import UPDATABLE_VIEWS, Delivery
from pimbot.workflow.notices.outbox import JobKind, PendingJobs
from pimbot.workflow.notices.unreachable import report_unreachable, report_unreachable_reviewer
from pimbot.workflow.records import get_request, snapshot
from pimbot.workflow.review_records import get_item, item_snapshot, waiting_for

log = logging.getLogger(__name__)

REVIEW_VIEWS = frozenset({View.REVIEW_ITEM, View.REVIEW_LIST, View.REVIEW_NOTICE})
# Views drawn from something other than a request row (the payload, a review item).
_NOT_OF_A_REQUEST = frozenset({v.value for v in (View.PROBLEM, View.INFO, *REVIEW_VIEWS)})
SENDS_AT_ONCE = 16  # a group's chat calls in flight at once (each gateway paces its own too)
STORE_ATTEMPTS = 2  # a sent group's copies: stored, or its jobs fail and send again
Outcome = tuple[ClaimedJob, Exception | None]
Seen = dict[str, tuple[RequestRow, RequestSnapshot]]

# A group's reads, built once (cache keys and compiled forms reused), their ids expanding.
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_REQUESTS = PreparedLoad(select(RequestRow).where(RequestRow.id.in_(_IDS)))
_VOTES = PreparedLoad(select(VoteRow).where(VoteRow.request_id.in_(_IDS)).order_by(VoteRow.at))
_COPIES = PreparedLoad(select(MessageRow).where(MessageRow.subject_id.in_(
    bindparam("subjects", expanding=True))).order_by(MessageRow.id))
_VERSIONS = {table: prepared.Prepared(select(table.id, table.version)
                                      .where(table.id.in_(_IDS)).order_by(table.id)
                                      .with_for_update())
             for table in (RequestRow, ReviewItemRow)}


@dataclass(frozen=True)
class Drawn:
    """A notice's card, the subject it is about, the request's platform, and the subject's
    version it shows (None: the card is never redrawn)."""

    view: View
    card: Card
    subject: str
    platform: str
    version: int | None


@dataclass(frozen=True)
class Unreached:
    """Someone no platform reaches. They are reported (``report_unreachable``) once the
    group's sends are done, so the report follows the cards it is about: the channel does
    not hear that carol "did not get the message about request X" before X's own card."""

    email: str
    drawn: Drawn


async def deliver(ctx: Context, job: ClaimedJob) -> None:
    """Send one notice (``run`` with one job); raises what it failed with."""
    await _one(ctx, job)


async def refresh(ctx: Context, job: ClaimedJob) -> None:
    """Redraw every copy of the cards sent about a request (or a review item) from its
    current state (``run`` with one job)."""
    await _one(ctx, job)


async def _one(ctx: Context, job: ClaimedJob) -> None:
    [(_, error)] = await run(ctx, [job])
    if error is not None:
        raise error


async def run(ctx: Context, jobs: list[ClaimedJob]) -> list[Outcome]:
    """Run ``notify`` and ``refresh_cards`` jobs together; each job's outcome (None: done).
    Redraws of one subject in the group are one redraw."""
    now = ctx.clock.now()
    delivery = Delivery(ctx.db, ctx.gateways)
    failed: dict[int, Exception] = {}
    notices = [job for job in jobs if job.kind == JobKind.NOTIFY.value]
    redraws: dict[str, list[ClaimedJob]] = {}
    for job in jobs:
        if job.kind == JobKind.REFRESH_CARDS.value:
            redraws.setdefault(str(job.payload["request_id"]), []).append(job)
    drawn, cards = await _draw_all(ctx, notices, redraws, failed)
    sending = [job for job in notices if job.id in drawn]
    redrawing = list(cards)
    calls = asyncio.Semaphore(SENDS_AT_ONCE)
    results = await asyncio.gather(
        *(_send(delivery, job, drawn[job.id], calls) for job in sending),
        *(_update(delivery, cards[subject], calls) for subject in redrawing),
        return_exceptions=True)
    sent: list[tuple[ClaimedJob, Drawn, SentMessage]] = []
    unreached: list[tuple[ClaimedJob, Unreached]] = []
    for job, result in zip(sending, results[:len(sending)], strict=True):
        if isinstance(result, BaseException):
            failed[job.id] = _error(result)
        elif isinstance(result, Unreached):
            unreached.append((job, result))
        elif result is not None:
            sent.append((job, drawn[job.id], result))
    for subject, result in zip(redrawing, results[len(sending):], strict=True):
        if isinstance(result, BaseException):
            failed.update((job.id, _error(result)) for job in redraws[subject])
    for attempt in range(STORE_ATTEMPTS):
        try:
            await _store(ctx, delivery, sent, now)
            break
        except Exception as exc:  # a deadlock, say: then not stored, and sent again
            if attempt + 1 == STORE_ATTEMPTS:
                log.exception("could not store %d sent copies", len(sent))
                failed.update((job.id, exc) for job, _, _ in sent)
    for job, person in unreached:
        try:
            await _report(ctx, person)
        except Exception as exc:  # the job is retried: tried again, then reported
            failed[job.id] = exc
    for job in jobs:
        if job.kind not in (JobKind.NOTIFY.value, JobKind.REFRESH_CARDS.value):
            failed[job.id] = ValueError(f"not a notice: {job.kind}")
    return [(job, failed.get(job.id)) for job in jobs]


def _error(result: BaseException) -> Exception:
    if isinstance(result, Exception):
        return result
    raise result  # a cancellation, say: not the job's outcome


async def _draw_all(ctx: Context, notices: list[ClaimedJob],
                    redraws: dict[str, list[ClaimedJob]], failed: dict[int, Exception]
                    ) -> tuple[dict[int, Drawn], dict[str, list[tuple[MessageRow, Card]]]]:
    """Every card of the group from one read: the notices' cards by job id, and each redrawn
    subject's sent copies with their new cards."""
    drawn: dict[int, Drawn] = {}
    cards: dict[str, list[tuple[MessageRow, Card]]] = {}
    async with ctx.db.read() as session:
        copies = await _copies_of(session, list(redraws))
        seen = await _requests(ctx, session, [
            *(str(job.payload.get("request_id", "")) for job in notices
              if job.payload.get("view") not in _NOT_OF_A_REQUEST),
            *(copy.subject_id for found in copies.values() for copy in found
              if copy.view not in _NOT_OF_A_REQUEST)])
        for job in notices:
            try:
                drawn[job.id] = await _draw(ctx, session, View(job.payload["view"]),
                                            job.payload, seen)
            except Exception as exc:
                failed[job.id] = exc
        for subject, jobs in redraws.items():
            try:
                cards[subject] = [(copy, (await _draw(ctx, session, View(copy.view), {
                    "request_id": copy.subject_id}, seen)).card)
                    for copy in copies.get(subject, [])]
            except Exception as exc:
                failed.update((job.id, exc) for job in jobs)
    return drawn, cards


async def _copies_of(session: AsyncSession, subjects: list[str]
                     ) -> dict[str, list[MessageRow]]:
    """The stored copies of the cards about ``subjects``, oldest first, by subject."""
    found: dict[str, list[MessageRow]] = {}
    if subjects:
        for copy in await load(session, _COPIES, {"subjects": sorted(set(subjects))}):
            found.setdefault(copy.subject_id, []).append(copy)
    return found


async def _requests(ctx: Context, session: AsyncSession, ids: Iterable[str]) -> Seen:
    """The requests ``ids`` (those that exist) with their snapshots: one query for the rows,
    one for their votes."""
    wanted = sorted({rid.strip().lower() for rid in ids if rid})
    if not wanted:
        return {}
    rows = await load(session, _REQUESTS, {"ids": wanted})
    votes: dict[str, list[VoteRow]] = {}
    if rows:
        for vote in await load(session, _VOTES, {"ids": [row.id for row in rows]}):
            votes.setdefault(vote.request_id, []).append(vote)
    return {row.id: (row, await snapshot(session, ctx.policy, row, votes.get(row.id, [])))
            for row in rows}


async def _draw(ctx: Context, session: AsyncSession, view: View, payload: dict[str, Any],
                seen: Seen) -> Drawn:
    """The card for ``view`` about the payload's subject, in the caller's read; ``seen`` holds
    the requests already read in it (a request not there is read and kept)."""
    subject = str(payload.get("request_id", ""))
    if view in (View.PROBLEM, View.INFO):
        draw = problem_card if view is View.PROBLEM else info_card
        return Drawn(view, draw(payload.get("title", "pimbot"), payload.get("text", "")),
                     subject, str(payload.get("platform", "")), None)
    if view is View.REVIEW_NOTICE:
        return Drawn(view, review_notice_card(
            payload.get("title", "pimbot"), payload.get("text", ""),
            str(payload.get("reason_from", "")), str(payload.get("reason", ""))),
            subject, "", None)
    if view is View.REVIEW_LIST:
        items, total = await waiting_for(session, str(payload["reviewer"]))
        return Drawn(view, review_list_card(items, total), subject, "", None)
    if view is View.REVIEW_ITEM:
        item = await get_item(session, subject)
        return Drawn(view, review_item_card(await item_snapshot(session, item)), item.id, "",
                     item.version)
    if subject not in seen:
        row = await get_request(session, subject)
        seen[subject] = row, await snapshot(session, ctx.policy, row)
    row, view_of = seen[subject]
    return Drawn(view, render(view, view_of, payload.get("event", "")), row.id, row.platform,
                 row.version)


async def _send(delivery: Delivery, job: ClaimedJob, drawn: Drawn,
                calls: asyncio.Semaphore) -> SentMessage | Unreached | None:
    """Send one notice; the copy to store, or the person it could not reach (None: nothing
    to store)."""
    async with calls:
        return await _send_now(delivery, job, drawn)


async def _send_now(delivery: Delivery, job: ClaimedJob, drawn: Drawn
                    ) -> SentMessage | Unreached | None:
    audience: str = job.payload["audience"]
    if audience.startswith("user:"):
        email = audience.removeprefix("user:")
        try:
            sent = await delivery.to_user(email, drawn.card, prefer=drawn.platform)
        except Unreachable:
            return Unreached(email, drawn)
    else:
        channel = audience.removeprefix("channel:")
        try:
            maybe = await delivery.to_channel(channel, drawn.card)
        except Unreachable as gone:  # e.g. pimbot was removed from its team: do not retry
            log.warning("cannot post to channel %s: %s", channel, gone)
            return None
        if maybe is None:
            return None
        sent = maybe
    return sent if drawn.view.value in UPDATABLE_VIEWS else None


async def _report(ctx: Context, person: Unreached) -> None:
    if person.drawn.view in REVIEW_VIEWS:
        await report_unreachable_reviewer(ctx, person.email, person.drawn.subject)
    else:
        await report_unreachable(ctx, person.email, person.drawn.subject, person.drawn.view)


async def _update(delivery: Delivery, cards: list[tuple[MessageRow, Card]],
                  calls: asyncio.Semaphore) -> None:
    """Redraw a subject's copies at once; raises the first failure after all have ended."""
    async def one(copy: MessageRow, card: Card) -> None:
        async with calls:
            await delivery.update(copy, card)

    results = await asyncio.gather(*(one(copy, card) for copy, card in cards),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _store(ctx: Context, delivery: Delivery,
                 sent: list[tuple[ClaimedJob, Drawn, SentMessage]], now: datetime) -> None:
    """Store the sent copies and ask, in the same transaction, whether their subjects changed
    while the cards were on their way (a slow send, a 429): such a copy was not stored yet
    when the other copies were redrawn, so they are redrawn again. The subjects' rows are
    locked (PostgreSQL): a change either committed before (its version is seen here) or
    waits for this commit (its own redraw then finds the copy)."""
    if not sent:
        return
    async with ctx.db.transaction() as session:
        await delivery.remember_in(session, [
            (drawn.subject, drawn.view.value, job.payload["audience"], message)
            for job, drawn, message in sent], now)
        versioned = [drawn for _, drawn, _ in sent if drawn.version is not None]
        versions = await _versions(session, RequestRow, {
            d.subject for d in versioned if d.view is not View.REVIEW_ITEM})
        versions.update(await _versions(session, ReviewItemRow, {
            d.subject for d in versioned if d.view is View.REVIEW_ITEM}))
        changed = sorted({d.subject for d in versioned if versions.get(d.subject) != d.version})
        jobs = PendingJobs()
        for subject in changed:
            jobs.refresh_cards(now, subject)
        await jobs.write(session)


async def _versions(session: AsyncSession, table: type[RequestRow] | type[ReviewItemRow],
                    ids: set[str]) -> dict[str, int]:
    if not ids:
        return {}
    result = await prepared.run(session, _VERSIONS[table], {"ids": sorted(ids)})
    return {subject: version for subject, version in result.rows}
