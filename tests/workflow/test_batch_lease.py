"""An expiry batch whose revoke calls outlast the provider lease keeps its grants' leases
alive (one keeper for the batch, ``leases.batch_kept``), so the revoke jobs written as the
safety net find the grants still leased and wait: each grant is revoked exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from pimbot.domain.states import RequestState
from pimbot.ports import GrantTarget
from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import GrantRow, RequestRow
from pimbot.testing.fakes import RecordingProvider
from pimbot.workflow.lifecycle.leases import PROVIDER_LEASE
from pimbot.workflow.lifecycle.revocations import expire_many

from .harness import make_pim, request_id_of

BOB, CAROL = "bob@example.com", "carol@example.com"
ROLE = "staging-deploy"
DEADLINE_S = 30  # only so that a hang fails instead of blocking


class SlowRevokes(RecordingProvider):
    """Revokes wait for ``release`` once it is armed (the batch's calls, held in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.release: asyncio.Event | None = None
        self.started = 0
        self.both_started = asyncio.Event()

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        await super().revoke(target, ref)
        if self.release is not None:
            self.started += 1
            if self.started == 2:
                self.both_started.set()
            await self.release.wait()


def _job(request_id: str) -> ClaimedJob:
    return ClaimedJob(0, "expire", {"request_id": request_id}, 0,
                      datetime(2026, 1, 1, tzinfo=UTC))


async def _lease_ends(db: Database) -> set[datetime | None]:
    async with db.read() as session:
        return set((await session.scalars(select(GrantRow.lease_until).where(
            GrantRow.state == "revoking"))).all())


async def _extended(db: Database, taken: datetime | None) -> datetime | None:
    """The grants' lease end once the keeper has moved it past ``taken``."""
    for _ in range(DEADLINE_S * 20):
        (now_until,) = await _lease_ends(db)
        if now_until != taken:
            return now_until
        await asyncio.sleep(0.05)
    raise AssertionError("the batch's leases were never extended")


async def test_revoke_calls_outlasting_the_lease_keep_it_and_revoke_once(
        db: Database) -> None:
    """Guard: ``batch_kept``'s keeper (red without it: the revoke jobs take the lapsed
    leases and revoke both grants a second time)."""
    provider = SlowRevokes()
    pim = await make_pim(db, provider=provider)
    bob = request_id_of(await pim.say(BOB, f"activate {ROLE} for 1h"))
    carol = request_id_of(await pim.say(CAROL, f"activate {ROLE} for 1h"))
    async with db.read() as session:
        row = await session.get(RequestRow, bob)
    assert row is not None and row.expires_at is not None
    pim.clock.set(row.expires_at)
    provider.release = asyncio.Event()
    batch = asyncio.create_task(expire_many(pim.core.ctx, [_job(bob), _job(carol)]))
    async with asyncio.timeout(DEADLINE_S):
        await provider.both_started.wait()  # both calls in flight, their leases taken
        (taken,) = await _lease_ends(db)
        # The calls run on past the lease: the keeper extends it as the clock moves on.
        for _ in range(4):
            pim.clock.advance(PROVIDER_LEASE / 2)
            taken = await _extended(db, taken)
        assert taken is not None and taken > pim.clock.now()
        await pim.core.worker.run_due()  # the safety-net revoke jobs, due by now: they wait
        provider.release.set()
        outcomes = await batch
    assert all(error is None for _, error in outcomes), outcomes
    await pim.core.drain()
    assert sorted(c.activation_id for c in provider.actions("revoke")) == sorted([bob, carol])
    assert provider.unmatched() == {}
    async with db.read() as session:
        states = set((await session.scalars(select(RequestRow.state).where(
            RequestRow.id.in_([bob, carol])))).all())
    assert states == {RequestState.EXPIRED.value}
    assert (await verify_chain(db)).ok
