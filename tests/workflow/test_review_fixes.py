"""Cases found in review: nothing is left at a provider, and deadlines hold, whatever the
order in which things happen."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.store.database import Database
from pimbot.store.tables import GrantRow, JobRow, RequestRow

from .harness import POLICY, make_pim, request_id_of

BOB, ALICE, CAROL = "bob@example.com", "alice@example.com", "carol@example.com"


async def test_cancel_after_an_ambiguous_grant_failure_revokes(db: Database) -> None:
    pim = await make_pim(db)
    pim.provider.fail_grants = 1  # it may have been applied: the answer never came
    rid = request_id_of(await pim.say(BOB, "activate staging-deploy at +1m for 1h"))
    pim.provider.held.add((BOB, "staging-deploy"))  # …and it was, in fact, applied
    await pim.advance(timedelta(minutes=1))
    assert [c.action for c in pim.provider.calls] == ["grant"]
    assert (await pim.say(BOB, f"cancel {rid}")).ok
    await pim.advance(timedelta(seconds=5))  # the grant job's retry comes round
    assert (BOB, "staging-deploy") not in pim.provider.held
    assert pim.provider.actions("revoke")


async def test_a_grant_waiting_for_a_revoke_does_not_spend_its_attempts(db: Database) -> None:
    pim = await make_pim(db)
    first = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    async with db.transaction() as session:  # another replica is revoking `first` right now
        row = await session.get(RequestRow, first)
        assert row is not None and row.grant_id is not None
        grant = await session.get(GrantRow, row.grant_id)
        assert grant is not None
        row.state = "deactivated"
        grant.state, grant.lease_token = "revoking", "elsewhere"
        grant.lease_until = pim.clock.now() + timedelta(hours=1)
    second = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    for _ in range(10):
        await pim.advance(timedelta(seconds=3))
    async with db.read() as session:
        job = (await session.execute(select(JobRow).where(
            JobRow.dedupe_key == f"grant:{second}"))).scalar_one()
        assert job.status == "queued" and job.attempts == 0, (job.status, job.attempts)


async def test_an_approval_after_the_deadline_is_refused_even_if_the_timeout_job_is_late(
        db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
    pim.clock.advance(timedelta(hours=25))  # the worker was down: no timeout job ran
    reply = await pim.say(ALICE, f"approve {rid}")
    assert not reply.ok and "timed out" in reply.text
    assert pim.provider.calls == []


async def test_deactivate_by_role_ends_every_overlapping_activation(db: Database) -> None:
    """Two activations typed at the same instant may both pass the already-active check
    (it reads before it writes); deactivating the role ends all that were made."""
    pim = await make_pim(db)
    replies = await asyncio.gather(pim.say(BOB, "activate staging-deploy for 1h"),
                                   pim.say(BOB, "activate staging-deploy for 2h"))
    made = sum(r.ok for r in replies)
    reply = await pim.say(BOB, "deactivate staging-deploy")
    assert reply.ok and (made == 1 or "2 activations" in reply.text), reply.text
    assert (BOB, "staging-deploy") not in pim.provider.held


async def test_an_active_assignments_new_end_date_moves_its_grant(db: Database) -> None:
    later = POLICY + (
        "  - {user: carol@example.com, role: prod-db-admin, type: active,"
        " until: \"2026-12-31T00:00:00Z\"}\n")
    pim = await make_pim(db, later)
    await pim.core.drain()
    from pimbot.workflow.usecases.assignment import reconcile

    await reconcile(pim.core.ctx)
    await pim.core.drain()
    assert (CAROL, "prod-db-admin") in pim.provider.held
    sooner = later.replace("2026-12-31T00:00:00Z", "2026-11-02T10:00:00Z")
    await apply_policy(db, parse_policy(sooner), pim.clock)
    await reconcile(pim.core.ctx)
    await pim.advance(timedelta(hours=1))
    assert (CAROL, "prod-db-admin") not in pim.provider.held


async def test_a_two_person_rule_is_never_quietly_lowered(db: Database) -> None:
    strict = POLICY.replace(
        "    approval: {required: true, approvers: [group:dba-leads, sec-lead@example.com],\n"
        "               min_approvals: 2}",
        "    approval: {required: true, approvers: [group:dba-leads], min_approvals: 2}",
    ) + "  - {user: alice@example.com, role: two-man, type: eligible}\n"
    assert strict != POLICY
    pim = await make_pim(db, strict)
    reply = await pim.say(ALICE, "activate two-man for 1h reason x")
    assert not reply.ok and "needs 2 approvals, but only 1 approver" in reply.text
    assert (await pim.say(BOB, "activate two-man for 1h reason x")).ok
