"""A replica that died has its job and grant leases taken over at once; one that stops
cleanly gives them back; a revoke is recorded by one audit event even if a fence is outrun."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from pimbot.scheduling.queue import enqueue
from pimbot.scheduling.replicas import Replicas, pidspace
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, GrantRow, JobRow, ReplicaRow
from pimbot.workflow.actor import Actor
from pimbot.workflow.lifecycle import grants
from pimbot.workflow.lifecycle.leases import release_owner

from .harness import make_pim, request_id_of

BOB = "bob@example.com"
FAR = timedelta(hours=1)


async def _gone_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await process.wait()
    return process.pid


async def _held_by(db: Database, owner: str, seen_at: datetime, *, space: str,
                   pid: int) -> tuple[int, str]:
    """A replica row, a job it has leased for an hour, and a grant whose lease it holds."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        session.add(ReplicaRow(owner=owner, pidspace=space, pid=pid, started_at=seen_at,
                               seen_at=seen_at))
        await enqueue(session, "notify", {}, now - timedelta(seconds=1))
        job = (await session.execute(select(JobRow).order_by(JobRow.id.desc()))).scalars().first()
        assert job is not None
        job.lease_owner, job.lease_expires_at = owner, now + FAR
        grant = GrantRow(id=f"g-{owner}", email=BOB, role="staging-deploy", provider="demo",
                         params={}, activation_id="r1", state="revoking", starts_at=now,
                         created_at=now, lease_token="t", lease_until=now + FAR,
                         lease_owner=owner)
        session.add(grant)
        await session.flush()
        return job.id, grant.id


async def _leases(db: Database, job_id: int, grant_id: str) -> tuple[str | None, str | None]:
    async with db.read() as session:
        job = await session.get(JobRow, job_id)
        grant = await session.get(GrantRow, grant_id)
    assert job is not None and grant is not None
    return job.lease_owner, grant.lease_token


def _replicas(db: Database, owner: str = "me") -> Replicas:
    replicas = Replicas(db, owner, beat=3600)
    replicas.on_release(release_owner)
    return replicas


async def test_a_replica_whose_process_ended_on_this_host_is_taken_over_at_once(
    db: Database
) -> None:
    if not pidspace():
        pytest.skip("no /proc here to tell a pid namespace")
    job, grant = await _held_by(db, "crashed", datetime.now(UTC), space=pidspace(),
                                pid=await _gone_pid())
    me = _replicas(db)
    assert await me.join() == 1
    try:
        assert await _leases(db, job, grant) == (None, None)
        async with db.read() as session:
            assert await session.get(ReplicaRow, "crashed") is None
    finally:
        await me.leave()


async def test_a_replica_elsewhere_that_stopped_beating_is_taken_over(db: Database) -> None:
    job, grant = await _held_by(db, "silent", datetime.now(UTC) - timedelta(minutes=5),
                                space="another-host", pid=1)
    me = _replicas(db)
    assert await me.join() == 1
    try:
        assert await _leases(db, job, grant) == (None, None)
    finally:
        await me.leave()


async def test_a_live_replica_keeps_its_leases(db: Database) -> None:
    job, grant = await _held_by(db, "busy", datetime.now(UTC), space="another-host", pid=1)
    alive = os.getppid()  # a process that is running
    job2, grant2 = await _held_by(db, "sibling", datetime.now(UTC), space=pidspace(),
                                  pid=alive)
    me = _replicas(db)
    assert await me.join() == 0
    try:
        assert await _leases(db, job, grant) == ("busy", "t")
        assert await _leases(db, job2, grant2) == ("sibling", "t")
    finally:
        await me.leave()


async def test_a_clean_stop_gives_back_every_lease_it_holds(db: Database) -> None:
    me = _replicas(db, "leaving")
    await me.join()
    async with db.transaction() as session:
        await session.execute(update(ReplicaRow).values(pidspace="x"))
    job, grant = await _held_by(db, "leaving-too", datetime.now(UTC), space="x", pid=1)
    async with db.transaction() as session:  # hand them to "leaving"
        await session.execute(update(JobRow).where(JobRow.id == job).values(
            lease_owner="leaving"))
        await session.execute(update(GrantRow).where(GrantRow.id == grant).values(
            lease_owner="leaving"))
    await me.leave()
    assert await _leases(db, job, grant) == (None, None)
    async with db.read() as session:
        assert await session.get(ReplicaRow, "leaving") is None


async def test_a_revoke_is_recorded_once_even_when_its_fence_is_outrun(db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(BOB, "activate staging-deploy for 30m")
    await pim.advance(timedelta(minutes=31))
    assert len(pim.provider.actions("revoke")) == 1
    async with db.read() as session:
        grant_id = (await session.execute(select(GrantRow.id))).scalar_one()
    # A worker that was stalled past its lease comes back and records the same revoke again
    # (as if the grant record's state and lease had let it through).
    async with db.transaction() as session:
        await session.execute(update(GrantRow).values(state="revoking", lease_token="stale"))
    with pytest.raises(IntegrityError):
        await grants.revoked(pim.core.ctx, grant_id, "stale")
    async with db.read() as session:
        revoked = await session.scalar(select(func.count()).select_from(AuditEventRow).where(
            AuditEventRow.action == "grant.revoked"))
    assert revoked == 1


async def test_a_grant_cut_short_by_a_crash_is_revoked_once_its_request_has_ended(
    db: Database
) -> None:
    pim = await make_pim(db)
    reply = await pim.core.handle_text(Actor(BOB), "activate staging-deploy for 30m")
    rid = request_id_of(reply)
    # A replica took the grant's lease and called the provider, then died before recording.
    claimed = await grants._open_or_join(pim.core.ctx, rid)
    assert claimed is not None
    async with db.read() as session:
        record = await session.get(GrantRow, claimed[0])
    assert record is not None
    await pim.provider.grant(grants.target_of(record))
    async with db.transaction() as session:
        session.add(ReplicaRow(owner="ghost", pidspace="elsewhere", pid=1,
                               started_at=datetime.now(UTC) - FAR,
                               seen_at=datetime.now(UTC) - FAR))
        await session.execute(update(GrantRow).values(lease_owner="ghost"))
    # Meanwhile the request ends: its grant call is "in flight", so nothing is revoked yet.
    assert (await pim.core.handle_text(Actor(BOB), f"cancel {rid}")).ok
    await pim.core.drain()
    assert (BOB, "staging-deploy") in pim.provider.held
    await pim.core.replicas.join()  # the ghost is found dead: its lease goes, the grant too
    try:
        await pim.core.drain()
        assert (BOB, "staging-deploy") not in pim.provider.held
        # revoked once, with the activation id it was granted with (its ref was never
        # recorded: the webhook contract's Idempotency-Key names the activation for that)
        assert [c.activation_id for c in pim.provider.actions("revoke")] == [rid]
    finally:
        await pim.core.replicas.leave()
