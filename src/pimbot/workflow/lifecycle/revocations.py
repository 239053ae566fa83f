"""Expiry in bulk: every expire job claimed together is ended in one transaction, revoked
concurrently, and recorded in one more, whatever their number.

1. One transaction: the requests still due are moved to *expired* by ``move_many`` (the same
   checks, audit events and follow-ups as ``move``; the revoke jobs, due when the provider
   lease would run out, are the durable promise), and each grant left without a hold is
   leased for its revoke (``leases.take``).
2. The provider calls, concurrently, each under its grant's fenced lease and one of its
   provider's call slots (``max_concurrency``).
3. One transaction records every confirmed revoke under its fence (audit events, the holders'
   notices and card redraws) and marks the revoke jobs it kept done. A failed call hands
   over to its revoke job at once (``revoke_failed``), as a single expiry does.

If the first transaction cannot be made (a request changed meanwhile), the jobs run one by
one through ``grants.expire``; if the last cannot, each revoke is recorded on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.lifecycle import Cause
from pimbot.domain.states import RequestState
from pimbot.logcontext import bound
from pimbot.ports import GrantTarget
from pimbot.scheduling.queue import ClaimedJob, discard
from pimbot.store.observations import Figure, observe
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.store.versioned import Change, set_each, set_many
from pimbot.ui.views import View
from pimbot.workflow.audit import AuditBatch
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle import leases
from pimbot.workflow.lifecycle.failures import Failure, failure_of
from pimbot.workflow.lifecycle.grants import (
    alert,
    expire,
    lateness,
    provider_named,
    revoke_failed,
    revoked,
    target_of,
)
from pimbot.workflow.lifecycle.holds import revoke_key
from pimbot.workflow.lifecycle.transition import move_many
from pimbot.workflow.notices.outbox import PendingJobs

log = logging.getLogger(__name__)

_UNLEASED = {"lease_token": None, "lease_until": None, "lease_owner": None}
# The longest a batch's record (its third transaction) waits for the revokes queued behind a
# provider's call slots: far below the 90 s provider lease its grants are held under.
RECORD_YIELD_S = 5.0
_YIELD_POLL_S = 0.02

Outcome = tuple[ClaimedJob, Exception | None]


@dataclass(frozen=True)
class Leased:
    """A grant due for revoke, leased by this batch: what the provider is told."""

    grant_id: str
    token: str
    provider: str
    target: GrantTarget
    ref: str | None


async def expire_many(ctx: Context, jobs: list[ClaimedJob]) -> list[Outcome]:
    """Run many ``expire`` jobs at once; every job's outcome (None: done)."""
    started = time.perf_counter()
    try:
        leased = await _end_due(ctx, [str(job.payload["request_id"]) for job in jobs])
    except Exception as exc:
        log.info("expiring %d together failed (%s); one by one", len(jobs),
                 type(exc).__name__)
        return [(job, await _one(ctx, job)) for job in jobs]
    ended = time.perf_counter()
    await revoke_leased(ctx, leased)
    log.info("expired %d (%.0f ms), revoked %d (%.0f ms)", len(jobs),
             (ended - started) * 1000, len(leased), (time.perf_counter() - ended) * 1000)
    return [(job, None) for job in jobs]


async def _one(ctx: Context, job: ClaimedJob) -> Exception | None:
    try:
        await expire(ctx, job)
    except Exception as exc:
        return exc
    return None


async def _end_due(ctx: Context, request_ids: list[str]) -> list[Leased]:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        rows = list((await session.execute(select(RequestRow).where(
            RequestRow.id.in_(sorted(set(request_ids)))).order_by(RequestRow.id))).scalars())
        ending = [row for row in rows if row.state == RequestState.ACTIVE.value
                  and row.expires_at is not None and row.expires_at <= now]
        if not ending:
            return []  # extended or ended since these jobs were written
        due = await move_many(ctx, session, ending, Cause.EXPIRED,
                              revoke_at=now + leases.PROVIDER_LEASE)
        token = await leases.take_many(ctx, session, due)
        return [Leased(grant.id, token, grant.provider, target_of(grant), grant.ref)
                for grant in due]


async def revoke_leased(ctx: Context, leased: list[Leased]) -> None:
    """The provider calls, concurrently; then every confirmed one recorded at once."""
    groups = _by_token(leased)  # one per batch (``leases.take_many``): one keeper each
    outcomes = await asyncio.gather(*(_calls(ctx, token, grants)
                                      for token, grants in groups.items()))
    leased = [grant for grants in groups.values() for grant in grants]
    results = [result for group in outcomes for result in group]
    confirmed: list[Leased] = []
    for grant, result in zip(leased, results, strict=True):
        if isinstance(result, BaseException):
            await _failed(ctx, grant, result)
        else:
            confirmed.append(grant)
    if not confirmed:
        return
    await _after_queued_calls(ctx, {grant.provider for grant in confirmed})
    try:
        called = time.perf_counter()
        await _record_revoked(ctx, confirmed)
        log.debug("recorded %d revokes in %.0f ms", len(confirmed),
                  (time.perf_counter() - called) * 1000)
    except Exception:
        log.exception("recording %d revokes together failed; one by one", len(confirmed))
        for grant in confirmed:
            try:
                await revoked(ctx, grant.grant_id, grant.token)
            except Exception:  # its revoke job runs it again once the lease is free
                log.exception("could not record the revoke of grant %s", grant.grant_id)


async def _after_queued_calls(ctx: Context, providers: set[str]) -> None:
    """Let the revokes waiting for these providers' call slots (a burst's later batches) go
    first, for at most RECORD_YIELD_S: this batch's calls are done and its grants still
    leased, so its record is bookkeeping, and its CPU (~0.5 ms a revoke on the one event
    loop; on SQLite, the writer) would delay theirs. Only while the slots are all taken: a
    steady stream of expiries (never queued for a slot) records at once, so its batches
    end and the worker claims the next ones."""
    deadline = time.monotonic() + RECORD_YIELD_S
    for _ in range(round(RECORD_YIELD_S / _YIELD_POLL_S)):  # polls: nothing to wake it
        if time.monotonic() >= deadline or not any(
                leases.call_slots(ctx, provider).locked() for provider in providers):
            return
        await asyncio.sleep(_YIELD_POLL_S)


async def _calls(ctx: Context, token: str, grants: list[Leased]
                 ) -> list[BaseException | None]:
    async with leases.batch_kept(ctx, token):
        return await asyncio.gather(*(_call(ctx, grant) for grant in grants),
                                    return_exceptions=True)


def _by_token(leased: list[Leased]) -> dict[str, list[Leased]]:
    """The leased grants by lease token (one per batch: ``leases.take_many``), in order."""
    found: dict[str, list[Leased]] = {}
    for grant in leased:
        found.setdefault(grant.token, []).append(grant)
    return found


async def _call(ctx: Context, grant: Leased) -> None:
    provider = provider_named(ctx, grant.provider)
    await leases.call_in_slot(ctx, lambda: provider.revoke(grant.target, grant.ref),
                              grant.provider)


async def _failed(ctx: Context, grant: Leased, exc: BaseException) -> None:
    """As a single expiry's failed revoke: give the lease back, hand over to the revoke job."""
    failure = failure_of(exc if isinstance(exc, Exception) else Exception(repr(exc)), "revoke")
    with bound(activation_id=grant.target.activation_id):
        await _failed_bound(ctx, grant, failure)


async def _failed_bound(ctx: Context, grant: Leased, failure: Failure) -> None:
    log.warning("revoke of grant %s failed (error %s): %s", grant.grant_id, failure.error_id,
                failure.detail)
    try:
        await leases.release(ctx, grant.grant_id, grant.token)
        await revoke_failed(ctx, grant.grant_id, failure, retry_now=True)
    except Exception:  # the revoke job is due when the lease runs out anyway
        log.exception("could not record the failed revoke of grant %s", grant.grant_id)


async def _record_revoked(ctx: Context, confirmed: list[Leased]) -> None:
    now = ctx.clock.now()
    tokens = {grant.grant_id: grant.token for grant in confirmed}
    async with ctx.db.transaction() as session:
        records = list((await session.execute(
            select(GrantRow).where(GrantRow.id.in_(sorted(tokens))).order_by(GrantRow.id)
            .with_for_update().execution_options(populate_existing=True))).scalars())
        done: list[GrantRow] = []
        changes: list[Change] = []
        for record_row in records:
            if record_row.lease_token != tokens[record_row.id]:
                log.warning("grant %s: lease lost before the revoke was recorded",
                            record_row.id)
                continue  # fenced: whoever took it over records it
            if record_row.state != GrantState.REVOKING.value:
                changes.append((record_row, _UNLEASED))
                continue
            changes.append((record_row, _UNLEASED | {"state": GrantState.REVOKED.value,
                                                     "revoked_at": now}))
            done.append(record_row)
        await set_each(session, changes)  # under the rows' locks: one statement
        if not done:
            return
        holds = await _holds(session, [record_row.id for record_row in done])
        audit, jobs = AuditBatch(ctx), PendingJobs()
        told: list[RequestRow] = []
        for record_row in done:
            audit.add("pimbot", "grant.revoked", record_row.role,
                      request=record_row.activation_id, user=record_row.email,
                      grant=record_row.id, failures=record_row.failures,
                      once_key=f"grant.revoked:{record_row.id}")
            its_holds = holds.get(record_row.id, [])
            observe(session, Figure.REVOKED_LATE, lateness(record_row, its_holds, now))
            told += await _tell(ctx, session, jobs, now, record_row, its_holds)
        await set_many(session, told, {"revoked_at": now})
        await audit.write(session)
        await jobs.write(session)
        await discard(session, [revoke_key(record_row.id) for record_row in done], now)


async def _tell(ctx: Context, session: AsyncSession, jobs: PendingJobs, now: datetime,
                record_row: GrantRow, holds: list[RequestRow]) -> list[RequestRow]:
    """The holders hear their access is gone; channels told it was failing hear it is done.
    Returns the holders whose ``revoked_at`` the caller sets."""
    told: list[RequestRow] = []
    for row in holds:
        if row.revoked_at is not None:
            continue
        told.append(row)
        if row.state != RequestState.FAILED.value:
            jobs.notify_user(now, row.email, View.REQUESTER, row.id)
        if record_row.failure_alerted_at is not None and row.id == record_row.activation_id:
            await alert(ctx, session, now, row, "revoke_recovered")
        jobs.refresh_cards(now, row.id)
    return told


async def _holds(session: AsyncSession, grant_ids: list[str]) -> dict[str, list[RequestRow]]:
    found: dict[str, list[RequestRow]] = {}
    for row in (await session.execute(select(RequestRow).where(
            RequestRow.grant_id.in_(grant_ids)))).scalars():
        found.setdefault(row.grant_id or "", []).append(row)
    return found
