"""Grants in bulk: every grant job claimed together opens its grant record in one
transaction, calls the provider concurrently, and is recorded in one more.

1. One transaction, every slot locked: each request still approved, still backed by
   eligibility, whose slot has no other grant, gets its grant record and the record's lease
   (``leases.take``), exactly as ``grants.grant`` opens one. Anything else (a grant to join,
   a slot busy, a role gone, an eligibility ended, a retry of a record whose call failed)
   runs through ``grants.grant`` itself, one by one, after this transaction.
2. The provider calls, concurrently, each under its record's fenced lease and one of its
   provider's call slots (``max_concurrency``).
3. One transaction records every call that succeeded under its fence; the requests move to
   *active* with ``move_many`` (audit events, expiry jobs, notices). A request that ended
   while its call was in flight is handled as ``grants.grant`` does (``grant.applied_late``,
   and the revoke when no other hold stands on the grant). A failed call is the job's
   failure, retried (or the request fails), as a single grant's is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.ids import new_row_id
from pimbot.domain.lifecycle import Cause
from pimbot.domain.states import RequestState
from pimbot.logcontext import bound
from pimbot.ports import GrantTarget
from pimbot.providers.errors import ProviderError
from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.prepared import Prepared, run_many
from pimbot.store.prepared_load import PreparedLoad, load
from pimbot.store.tables import GrantRow, GrantState, RequestRow
from pimbot.store.versioned import Change, set_each
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle import leases
from pimbot.workflow.lifecycle.eligibility import backing_many
from pimbot.workflow.lifecycle.failures import failure_of
from pimbot.workflow.lifecycle.grants import (
    expiry_of,
    grant,
    grant_failed,
    granted,
    iso,
    provider_named,
    target_of,
)
from pimbot.workflow.lifecycle.holds import due_for_revoke, holders, lock_slots
from pimbot.workflow.lifecycle.transition import move_many

log = logging.getLogger(__name__)

Outcome = tuple[ClaimedJob, Exception | None]

# A batch's statements, built once (their cache keys and compiled forms reused), with the
# batch's ids, people and roles as expanding parameters.
_REQUESTS = PreparedLoad(select(RequestRow).where(
    RequestRow.id.in_(bindparam("ids", expanding=True))))
_LIVE_GRANTS = PreparedLoad(select(GrantRow).where(  # every slot's grants not yet revoked
    GrantRow.email.in_(bindparam("emails", expanding=True)),
    GrantRow.role.in_(bindparam("roles", expanding=True)),
    GrantRow.state != GrantState.REVOKED.value).order_by(GrantRow.created_at))
_LOCKED_GRANTS = (select(GrantRow).where(GrantRow.id.in_(bindparam("ids", expanding=True)))
                  .order_by(GrantRow.id).with_for_update()
                  .execution_options(populate_existing=True))
_GRANT_COLUMNS = tuple(attr.key for attr in inspect(GrantRow).column_attrs)
_INSERT_GRANT = Prepared(insert(GrantRow.__table__),  # type: ignore[arg-type]
                         keys=_GRANT_COLUMNS)


@dataclass(frozen=True)
class Opened:
    """A grant record opened by this batch, leased for its provider call."""

    job: ClaimedJob
    request_id: str
    grant_id: str
    token: str
    provider: str
    target: GrantTarget


async def grant_many(ctx: Context, jobs: list[ClaimedJob]) -> list[Outcome]:
    """Run many ``grant`` jobs at once; every job's outcome (None: done)."""
    try:
        opened, alone, settled = await _open_all(ctx, jobs)
    except Exception as exc:
        log.info("opening %d grants together failed (%s); one by one", len(jobs),
                 type(exc).__name__)
        return [(job, await _one(ctx, job)) for job in jobs]
    outcomes: list[Outcome] = [(job, None) for job in settled]
    results = await asyncio.gather(*(_call(ctx, one) for one in opened),
                                   return_exceptions=True)
    succeeded: list[tuple[Opened, str | None]] = []
    for one, result in zip(opened, results, strict=True):
        if isinstance(result, BaseException):
            outcomes.append((one.job, await _failed(ctx, one, result)))
        else:
            succeeded.append((one, result))
    outcomes += await _record_all(ctx, succeeded)
    outcomes += [(job, await _one(ctx, job)) for job in alone]
    return outcomes


async def _one(ctx: Context, job: ClaimedJob) -> Exception | None:
    try:
        await grant(ctx, job)
    except Exception as exc:
        return exc
    return None


async def _open_all(ctx: Context, jobs: list[ClaimedJob]
                    ) -> tuple[list[Opened], list[ClaimedJob], list[ClaimedJob]]:
    """Returns the records opened, the jobs left to ``grants.grant``, and the jobs with
    nothing to do (their request is no longer approved)."""
    now = ctx.clock.now()
    opened: list[Opened] = []
    alone: list[ClaimedJob] = []
    settled: list[ClaimedJob] = []
    async with ctx.db.transaction() as session:
        ids = sorted({str(job.payload["request_id"]) for job in jobs})
        rows = {row.id: row for row in await load(session, _REQUESTS, {"ids": ids})}
        await lock_slots(ctx, session, [(row.email, row.role) for row in rows.values()])
        live = await _live_grants(session, list(rows.values()))
        backings = await backing_many(session, [row for row in rows.values()
                                                if row.state == RequestState.APPROVED.value], now)
        made: list[GrantRow] = []
        for job in jobs:
            row = rows.get(str(job.payload["request_id"]))
            if row is not None and row.state != RequestState.APPROVED.value:
                settled.append(job)  # ended before its grant: nothing was granted for it
                continue
            record_row = _open(ctx, row, live, backings, now) if row is not None else None
            if record_row is None:
                alone.append(job)
                continue
            made.append(record_row)
            opened.append(Opened(job, record_row.activation_id, record_row.id,
                                 leases.take(ctx, record_row), record_row.provider,
                                 target_of(record_row)))
        await _write_opened(session, made, rows)
    return opened, alone, settled


async def _write_opened(session: AsyncSession, made: list[GrantRow],
                        rows: dict[str, RequestRow]) -> None:
    """The new records in one multi-row INSERT, and their requests' ``grant_id`` and
    ``expires_at`` under the requests' compare-and-set in one more (``store.versioned``)."""
    if not made:
        return
    await run_many(session, _INSERT_GRANT, [
        {key: getattr(record_row, key) for key in _GRANT_COLUMNS} | {"version": 1}
        for record_row in made])
    await set_each(session, [
        (rows[record_row.activation_id], {"grant_id": record_row.id,
                                          "expires_at": record_row.expires_at})
        for record_row in made])


async def _live_grants(session: AsyncSession, rows: list[RequestRow]
                       ) -> dict[tuple[str, str], list[GrantRow]]:
    """Every slot's grants not yet confirmed revoked (``slot_grants`` for many slots)."""
    found: dict[tuple[str, str], list[GrantRow]] = {}
    if not rows:
        return found
    for live in await load(session, _LIVE_GRANTS, {
            "emails": sorted({row.email for row in rows}),
            "roles": sorted({row.role for row in rows})}):
        found.setdefault((live.email, live.role), []).append(live)
    return found


def _open(ctx: Context, row: RequestRow, live: dict[tuple[str, str], list[GrantRow]],
          backings: dict[str, tuple[bool, datetime | None]], now: datetime) -> GrantRow | None:
    """The new record of the simple case (an approved request, backed, in an empty slot,
    never tried), to be written by ``_write_opened``; None for every other case, which
    ``grants.grant`` handles."""
    role = ctx.policy.roles.get(row.role)
    if role is None or row.grant_id is not None or live.get((row.email, row.role)):
        return None
    still_backed, cap = backings.get(row.id, (False, None))
    if not still_backed:
        return None
    made = GrantRow(
        id=new_row_id("g"), email=row.email, role=row.role, provider=role.provider,
        params=dict(role.grant), activation_id=row.id, state=GrantState.GRANTING.value,
        starts_at=now, expires_at=expiry_of(row, now, cap), created_at=now, failures=0,
        failure="", ref=None, granted_at=None, revoke_due_at=None, revoked_at=None,
        failure_alerted_at=None)
    live[(row.email, row.role)] = [made]  # a second request of the slot waits for this one
    return made


async def _call(ctx: Context, one: Opened) -> str | None:
    provider = provider_named(ctx, one.provider)
    return await leases.call_under_lease(ctx, one.grant_id, one.token,
                                         lambda: provider.grant(one.target), one.provider)


async def _failed(ctx: Context, one: Opened, exc: BaseException) -> Exception | None:
    """As a single grant's failed call: the lease goes back; the request fails when the
    error is final or the attempts are spent, else the job retries."""
    error = exc if isinstance(exc, Exception) else Exception(repr(exc))
    with bound(request_id=f"job-{one.job.id}", activation_id=one.request_id):
        try:
            await leases.release(ctx, one.grant_id, one.token)
            final = isinstance(error, ProviderError) and not error.retryable
            if final or one.job.attempts + 1 >= one.job.max_attempts:
                await grant_failed(ctx, one.request_id, one.grant_id,
                                   failure_of(error, "grant"))
                return None
        except Exception as inner:
            return inner
    return error


async def _record_all(ctx: Context, succeeded: list[tuple[Opened, str | None]]
                      ) -> list[Outcome]:
    if not succeeded:
        return []
    try:
        return await _record(ctx, succeeded)
    except Exception:
        log.exception("recording %d grants together failed; one by one", len(succeeded))
    outcomes: list[Outcome] = []
    for one, ref in succeeded:
        try:
            await granted(ctx, one.grant_id, one.token, ref)
            outcomes.append((one.job, None))
        except Exception as exc:
            outcomes.append((one.job, exc))
    return outcomes


async def _record(ctx: Context, succeeded: list[tuple[Opened, str | None]]) -> list[Outcome]:
    now = ctx.clock.now()
    by_grant = {one.grant_id: (one, ref) for one, ref in succeeded}
    outcomes: list[Outcome] = []
    async with ctx.db.transaction() as session:
        records = {record_row.id: record_row for record_row in (await session.execute(
            _LOCKED_GRANTS, {"ids": sorted(by_grant)})).scalars()}
        fenced: list[GrantRow] = []
        changes: list[Change] = []
        for grant_id, (one, ref) in by_grant.items():
            record_row = records.get(grant_id)
            if record_row is None or record_row.lease_token != one.token:
                outcomes.append((one.job, leases.LeaseLost(grant_id)))
                continue
            changes.append((record_row, {
                "lease_token": None, "lease_until": None, "lease_owner": None,
                "state": GrantState.GRANTED.value, "ref": ref, "granted_at": now}))
            fenced.append(record_row)
            outcomes.append((one.job, None))
        await set_each(session, changes)  # under the rows' locks: one statement
        rows = {row.id: row for row in await load(
            session, _REQUESTS, {"ids": sorted(r.activation_id for r in fenced)})}
        approved = [rows[r.activation_id] for r in fenced
                    if r.activation_id in rows
                    and rows[r.activation_id].state == RequestState.APPROVED.value]
        moving = {row.id for row in approved}
        late = [r for r in fenced if r.activation_id not in moving]
        await move_many(ctx, session, approved, Cause.GRANTED, details={
            row.id: {"grant": row.grant_id, "expires_at": iso(row.expires_at)}
            for row in approved})
        for record_row in late:
            await _late(ctx, session, record_row, rows.get(record_row.activation_id))
    return outcomes


async def _late(ctx: Context, session: AsyncSession, record_row: GrantRow,
                row: RequestRow | None) -> None:
    """Ended while the grant was in flight: take it back unless another hold joined."""
    await record(ctx, session, "pimbot", "grant.applied_late", record_row.role,
                 request=record_row.activation_id, user=record_row.email,
                 grant=record_row.id)
    besides = row.id if row is not None else ""
    if not await holders(session, record_row.id, besides=besides):
        await due_for_revoke(ctx, session, record_row)
