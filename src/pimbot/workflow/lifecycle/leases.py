"""One provider call at a time per grant: a lease that cannot be outrun.

The lease is taken in a transaction (compare-and-set on the grant's version), extended while
the call is in flight, and fenced: the transaction that records the outcome checks that the
lease token is still the one it took, so a worker whose lease was taken over (a stalled
process, clock skew between replicas) records nothing and writes no follow-up. Provider
calls are cut off at ``CALL_LIMIT``, well below the lease, and the policy refuses provider
timeouts above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.providers.concurrency import max_concurrency
from pimbot.providers.settings import MAX_PROVIDER_TIMEOUT
from pimbot.scheduling.queue import reschedule_many
from pimbot.scheduling.retry import RetryLater
from pimbot.store.tables import GrantRow, GrantState
from pimbot.store.versioned import set_many
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.holds import revoke_key

log = logging.getLogger(__name__)

T = TypeVar("T")

PROVIDER_LEASE = timedelta(seconds=90)
CALL_LIMIT = timedelta(seconds=MAX_PROVIDER_TIMEOUT + 5)  # the provider's own timeout, plus
HEARTBEAT_SECONDS = 0.5  # how often (real time) the lease is looked at while a call runs
assert CALL_LIMIT * 2 < PROVIDER_LEASE


class SlotBusy(RetryLater):
    """Another provider call for this grant (or slot) is in flight: the job waits without
    spending an attempt and looks again."""


class LeaseLost(Exception):
    """This worker's lease on the grant was taken over: it must record nothing."""


def busy(grant: GrantRow, ctx: Context) -> bool:
    return grant.lease_until is not None and grant.lease_until > ctx.clock.now()


def take(ctx: Context, grant: GrantRow) -> str:
    """Take the lease on ``grant`` (in the caller's transaction); returns its token."""
    if busy(grant, ctx):
        raise SlotBusy(f"grant {grant.id}: a provider call is in flight")
    token = secrets.token_hex(8)
    grant.lease_token = token
    grant.lease_until = ctx.clock.now() + PROVIDER_LEASE
    grant.lease_owner = ctx.owner or None
    return token


async def take_many(ctx: Context, session: AsyncSession, grants: Sequence[GrantRow]) -> str:
    """``take`` for many grants in one statement (an expiry batch's); returns the token,
    one for all of them: each grant's own row is its fence, and only this batch knows it."""
    for grant in grants:
        if busy(grant, ctx):
            raise SlotBusy(f"grant {grant.id}: a provider call is in flight")
    token = secrets.token_hex(8)
    await set_many(session, grants, {"lease_token": token,
                                     "lease_until": ctx.clock.now() + PROVIDER_LEASE,
                                     "lease_owner": ctx.owner or None})
    return token


async def fenced(ctx: Context, session: AsyncSession, grant_id: str, token: str) -> GrantRow:
    """The grant, locked for this transaction, if ``token`` still holds its lease."""
    grant = await session.get(GrantRow, grant_id, with_for_update=True,
                              populate_existing=True)
    if grant is None or grant.lease_token != token:
        raise LeaseLost(grant_id)
    grant.lease_token = None
    grant.lease_until = None
    grant.lease_owner = None
    return grant


async def release(ctx: Context, grant_id: str, token: str) -> None:
    """Give the lease back after a failed call (nothing else changes)."""
    async with ctx.db.transaction() as session:
        await session.execute(update(GrantRow).where(
            GrantRow.id == grant_id, GrantRow.lease_token == token).values(
            lease_token=None, lease_until=None, lease_owner=None).execution_options(
            synchronize_session=False))


async def release_owner(session: AsyncSession, owner: str) -> int:
    """Free every grant lease ``owner`` holds (a replica found dead, or stopping): the next
    worker takes the grant at once, and the old owner's fence no longer matches. A revoke it
    had leased (an expiry batch's, whose revoke job waits for the lease to run out) is due
    again from when its last hold ended."""
    revoking = (await session.execute(select(GrantRow.id, GrantRow.revoke_due_at).where(
        GrantRow.lease_owner == owner,
        GrantRow.state == GrantState.REVOKING.value))).all()
    result = await session.execute(update(GrantRow).where(GrantRow.lease_owner == owner).values(
        lease_token=None, lease_until=None, lease_owner=None).execution_options(
        synchronize_session=False))
    by_due: dict[datetime, list[str]] = {}
    for grant_id, due in revoking:
        if due is not None:
            by_due.setdefault(due, []).append(revoke_key(grant_id))
    for due, keys in by_due.items():
        await reschedule_many(session, keys, due)
    return int(getattr(result, "rowcount", 0) or 0)


def call_slots(ctx: Context, provider: str) -> asyncio.Semaphore:
    """The provider's calls in flight: at most its ``max_concurrency`` at once."""
    slots = ctx.call_slots.get(provider)
    if slots is None:
        slots = asyncio.Semaphore(max_concurrency(ctx.policy.providers.get(provider)))
        ctx.call_slots[provider] = slots
    return slots


async def call_under_lease(ctx: Context, grant_id: str, token: str,
                           call: Callable[[], Awaitable[T]], provider: str) -> T:
    """Run ``call`` to ``provider`` while keeping the lease alive: it waits for one of the
    provider's call slots (its ``max_concurrency``), then runs bounded by CALL_LIMIT."""
    keeper = asyncio.create_task(_keep_alive(ctx, grant_id, token))
    try:
        async with call_slots(ctx, provider), asyncio.timeout(CALL_LIMIT.total_seconds()):
            return await call()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


@contextlib.asynccontextmanager
async def batch_kept(ctx: Context, token: str) -> AsyncIterator[None]:
    """Keep every grant leased under ``token`` (one batch's, ``take_many``) alive while the
    block runs: one task and one statement for the whole batch, where ``call_under_lease``
    keeps one task per grant (a burst of 1,000 revokes waiting for 64 call slots woke 1,000
    of them every half second). Calls inside run through ``call_in_slot``."""
    keeper = asyncio.create_task(_keep_alive(ctx, None, token))
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def call_in_slot(ctx: Context, call: Callable[[], Awaitable[T]], provider: str) -> T:
    """Run ``call`` to ``provider`` in one of its call slots, bounded by CALL_LIMIT, inside
    ``batch_kept`` (which keeps its grant's lease alive)."""
    async with call_slots(ctx, provider), asyncio.timeout(CALL_LIMIT.total_seconds()):
        return await call()


async def _keep_alive(ctx: Context, grant_id: str | None, token: str) -> None:
    """Extend the lease (of ``grant_id``; without one, of every grant leased under
    ``token``) whenever a third of it has passed (by the Clock)."""
    extended_at = ctx.clock.now()
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        now = ctx.clock.now()
        if now - extended_at < PROVIDER_LEASE / 3:
            continue
        try:
            leased = GrantRow.lease_token == token
            if grant_id is not None:
                leased = and_(GrantRow.id == grant_id, leased)
            async with ctx.db.transaction() as session:
                await session.execute(update(GrantRow).where(leased).values(
                    lease_until=now + PROVIDER_LEASE).execution_options(
                    synchronize_session=False))
            extended_at = now
        except Exception:  # the fence protects correctness; keep trying
            log.warning("could not extend the provider lease of %s",
                        f"grant {grant_id}" if grant_id else "a batch's grants")
