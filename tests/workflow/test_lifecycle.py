"""The holes issue 7 found in the request lifecycle, each closed (see also
``test_lifecycle_races.py`` for the PostgreSQL races and ``tests/e2e/test_lifecycle_e2e.py``
for the same promises through ``pimbot run``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from pimbot.ports import GrantTarget
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, GrantRow, JobRow, RequestRow
from pimbot.testing.fakes import RecordingProvider
from pimbot.ui.cards import ActionId
from pimbot.workflow.actor import Actor
from pimbot.workflow.usecases.assignment import reconcile

from .harness import POLICY, make_pim, request_id_of

BOB, ALICE, ADMIN = "bob@example.com", "alice@example.com", "sec-lead@example.com"


async def _events(db: Database, action: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEventRow).where(
            AuditEventRow.action == action)) or 0)


# -- 1. overlapping holds --------------------------------------------------------------------


async def test_overlapping_activations_grant_once_and_revoke_that_grant(db: Database) -> None:
    pim = await make_pim(db)
    first = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    # a second activation is refused (extend is the way); an admin's assignment overlaps
    assigned = await pim.say(ADMIN, "assign bob@example.com staging-deploy active for 3h")
    assert assigned.ok, assigned.text
    async with db.read() as session:
        second = await session.scalar(select(RequestRow.id).where(
            RequestRow.kind == "assignment", RequestRow.email == BOB))
    assert [c.activation_id for c in pim.provider.actions("grant")] == [first]
    await pim.advance(timedelta(hours=1, seconds=1))  # the first hold ends, the second holds
    assert pim.provider.actions("revoke") == []
    assert len(pim.provider.credentials) == 1
    card = [d.latest for d in pim.chat.to(f"user:{BOB}") if first in d.card.context][-1]
    assert f"through request {second}" in card.text, card.text
    await pim.advance(timedelta(hours=2))
    assert [c.activation_id for c in pim.provider.actions("revoke")] == [first]
    assert pim.provider.credentials == {}, "a per-activation credential was left behind"
    assert pim.provider.unmatched() == {}


async def test_an_active_assignment_and_an_activation_share_one_grant(db: Database) -> None:
    policy = POLICY + (
        "  - {user: carol@example.com, role: prod-db-admin, type: active,"
        " until: \"2026-11-02T12:00:00Z\"}\n"
        "  - {user: carol@example.com, role: prod-db-admin, type: eligible}\n")
    pim = await make_pim(db, policy)
    await reconcile(pim.core.ctx)  # what start() does: grant the active assignment
    await pim.core.drain()
    assert len(pim.provider.actions("grant")) == 1
    reply = await pim.say("carol@example.com", "activate prod-db-admin for 4h reason x")
    rid = request_id_of(reply)
    await pim.click(ALICE, ActionId.APPROVE, rid)
    assert len(pim.provider.actions("grant")) == 1, "the activation joins the assignment"
    await pim.advance(timedelta(hours=3, seconds=1))  # the assignment ended at 12:00
    assert pim.provider.actions("revoke") == [], "the activation still holds it"
    await pim.advance(timedelta(hours=1))
    assert len(pim.provider.actions("revoke")) == 1
    assert pim.provider.credentials == {} and pim.provider.unmatched() == {}


# -- 3. a slow provider call: leases that cannot be outrun -------------------------------------


class GatedProvider(RecordingProvider):
    """Its first grant call hangs until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self._held_once = False

    async def grant(self, target: GrantTarget) -> str | None:
        if not self._held_once:
            self._held_once = True
            self.entered.set()
            await self.gate.wait()
        return await super().grant(target)


async def _slow_grant_then_second_worker(db: Database, *, skew: timedelta,
                                          advance_shared: timedelta) -> GatedProvider:
    """Worker A's grant call hangs; worker B (clock ahead by ``skew``) runs due jobs; the
    shared clock moves by ``advance_shared`` first. Returns the provider after A finishes."""
    provider = GatedProvider()
    a = await make_pim(db, provider=provider)
    b = await make_pim(db, provider=provider)
    b.clock.set(a.clock.now())
    await a.core.handle_text(Actor(BOB), "activate staging-deploy for 1h")
    running = asyncio.create_task(a.core.worker.run_due())
    await asyncio.wait_for(provider.entered.wait(), 10)
    a.clock.advance(advance_shared)
    b.clock.set(a.clock.now() + skew)
    await asyncio.sleep(1.2)  # a heartbeat or two, in real time
    await b.core.drain()
    provider.gate.set()
    await running
    await a.core.drain()
    row = await _only_request(db)
    assert row.state == "active" and provider.actions("revoke") == [], "revoked early"
    assert (BOB, "staging-deploy") in provider.held
    rid = row.id
    reply = await a.core.handle_text(Actor(BOB), "deactivate staging-deploy")
    assert reply.ok, reply.text
    await a.core.drain()
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
    assert row is not None and row.revoked_at is not None, "the later deactivation revoked"
    return provider


async def _only_request(db: Database) -> RequestRow:
    async with db.read() as session:
        return (await session.scalars(select(RequestRow))).one()


async def test_a_lease_held_through_a_slow_call_stops_a_second_grant(db: Database) -> None:
    provider = await _slow_grant_then_second_worker(
        db, skew=timedelta(0), advance_shared=timedelta(seconds=100))
    assert len(provider.actions("grant")) == 1, "the lease was extended while the call ran"
    assert provider.unmatched() == {} and provider.credentials == {}
    assert await _events(db, "grant.applied") == 1


async def test_a_worker_whose_lease_was_taken_over_records_nothing(db: Database) -> None:
    # Replica B's clock runs 200 s ahead: it sees A's leases as expired and grants again.
    provider = await _slow_grant_then_second_worker(
        db, skew=timedelta(seconds=200), advance_shared=timedelta(0))
    assert len(provider.actions("grant")) == 2  # the same activation id: one credential
    revokes = provider.actions("revoke")
    assert len(revokes) == 1, "A's late answer must not revoke (or re-record) anything"
    assert provider.unmatched() == {} and provider.credentials == {}
    assert await _events(db, "grant.applied") == 1


async def test_a_revoke_job_that_found_nothing_does_not_block_the_real_one(
        db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.grant_id is not None
    async with db.transaction() as session:  # a revoke job written early, by mistake
        from pimbot.scheduling.queue import enqueue

        await enqueue(session, "revoke", {"grant_id": row.grant_id}, pim.clock.now(),
                      dedupe_key=f"revoke:{row.grant_id}")
    await pim.core.drain()
    assert pim.provider.actions("revoke") == [], "never revoke a grant that is still held"
    await pim.say(BOB, "deactivate staging-deploy")
    assert len(pim.provider.actions("revoke")) == 1
    async with db.read() as session:
        grant = await session.get(GrantRow, row.grant_id)
        jobs = (await session.scalars(select(JobRow).where(
            JobRow.dedupe_key == f"revoke:{row.grant_id}"))).all()
    assert grant is not None and grant.state == "revoked"
    assert len(jobs) == 2


# -- 4. break-glass, one at a time -------------------------------------------------------------


async def test_break_glass_does_not_chain(db: Database) -> None:
    pim = await make_pim(db)
    totp = await pim.enrol(BOB)
    first = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(totp)} reason db down")
    assert first.ok, first.text
    for _ in range(3):
        pim.clock.advance(timedelta(seconds=31))
        again = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(totp)} "
                                   "reason still down")
        assert not again.ok and "only one at a time" in again.text, again.text
    assert len(pim.provider.actions("grant")) == 1
    alerts = [c for c in pim.cards_to(f"user:{ADMIN}") if "second break-glass" in c.title]
    assert len(alerts) == 3
    assert await _events(db, "breakglass.refused") == 3
    await pim.say(BOB, "deactivate prod-db-admin")  # once it is over, a new one may start
    pim.clock.advance(timedelta(seconds=31))
    later = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(totp)} reason again")
    assert later.ok, later.text


# -- the policy no longer matches a live grant ----------------------------------------------


async def test_a_role_removed_from_the_policy_is_revoked_with_what_was_granted(
        db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    changed = POLICY.replace("  staging-deploy:\n    description: Deploy to staging\n"
                             "    provider: demo\n", "  staging-deploy:\n"
                             "    description: Deploy to staging\n    provider: demo\n"
                             "    grant: {group: new-deployers}\n")
    assert changed != POLICY
    again = await make_pim(db, changed, provider=pim.provider)  # a restart: apply, reconcile
    again.clock.set(pim.clock.now())
    await reconcile(again.core.ctx)
    await again.core.drain()
    revokes = pim.provider.actions("revoke")
    assert [r.activation_id for r in revokes] == [rid]
    assert revokes[0].grant == {}, "revoked with the parameters it was granted with"
    assert pim.provider.unmatched() == {}
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
    assert row is not None and row.state == "revoked" and row.revoked_at is not None
    assert "grant parameters" in row.decision_note
    told = again.cards_to(f"user:{BOB}")
    assert any("grant parameters" in c.text for c in told), [c.text for c in told]
