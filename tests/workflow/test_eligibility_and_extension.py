"""Eligibility backs an activation for its whole life; extensions keep every rule."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.ui.cards import ActionId

from .harness import make_pim, request_id_of
from .test_mfa_flow import MFA_POLICY

BOB, ALICE, CAROL, LEAD = ("bob@example.com", "alice@example.com", "carol@example.com",
                           "sec-lead@example.com")


async def _state(db: Database, request_id: str) -> str:
    async with db.read() as session:
        row = await session.get(RequestRow, request_id)
        assert row is not None
        return row.state


async def test_unassign_cancels_waiting_requests_and_revokes_active_ones(db: Database) -> None:
    pim = await make_pim(db)
    waiting = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
    active = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    assert (await pim.say(LEAD, "unassign bob@example.com prod-db-admin")).ok
    assert (await pim.say(LEAD, "unassign bob@example.com staging-deploy")).ok
    assert await _state(db, waiting) == "cancelled"
    assert await _state(db, active) == "revoked"
    assert [c.role for c in pim.provider.actions("revoke")] == ["staging-deploy"]
    late = await pim.click(ALICE, ActionId.APPROVE, waiting)
    assert not late.ok and pim.provider.actions("grant")[-1].role == "staging-deploy"


async def test_an_approval_after_eligibility_ended_grants_nothing(db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(LEAD, "assign carol@example.com prod-db-admin eligible for 1h")
    rid = request_id_of(await pim.say(CAROL, "activate prod-db-admin for 1h reason x"))
    pim.clock.advance(timedelta(hours=2))  # no reconcile ran yet: the approval must notice
    reply = await pim.say(ALICE, f"approve {rid}")
    assert not reply.ok and "no longer eligible" in reply.text
    assert await _state(db, rid) == "cancelled"
    assert pim.provider.calls == []


async def test_access_never_outlasts_the_eligibility_behind_it(db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(LEAD, "assign carol@example.com prod-db-admin eligible for 30m")
    rid = request_id_of(await pim.say(CAROL, "activate prod-db-admin for 2h reason x"))
    await pim.click(ALICE, ActionId.APPROVE, rid)
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.expires_at == pim.clock.now() + timedelta(minutes=30)
    await pim.advance(timedelta(minutes=30))
    assert [c.email for c in pim.provider.actions("revoke")] == [CAROL]


async def test_extension_keeps_mfa_the_maximum_and_never_extends_breakglass(db: Database) -> None:
    pim = await make_pim(db, MFA_POLICY)
    bob = await pim.enrol(BOB)
    alice = await pim.enrol(ALICE)
    rid = request_id_of(await pim.say(
        BOB, f"activate prod-db-admin for 1h code {pim.code(bob)} reason x"))
    pim.clock.advance(timedelta(seconds=30))
    await pim.click(ALICE, ActionId.SUBMIT_APPROVE, rid, {"code": pim.code(alice)})
    pim.clock.advance(timedelta(seconds=30))
    asked = await pim.say(BOB, "extend prod-db-admin for 1h")
    assert not asked.ok and asked.form is not None and "authenticator code" in asked.text
    too_long = await pim.say(BOB, f"extend prod-db-admin for 4h code {pim.code(bob)}")
    assert not too_long.ok and "longer than the maximum of 4h" in too_long.text
    ok = await pim.say(BOB, f"extend prod-db-admin for 1h code {pim.code(bob)}")
    assert ok.ok, ok.text  # an extension request, sent for approval again

    await pim.say(LEAD, "assign carol@example.com prod-db-admin eligible")
    carol = await pim.enrol(CAROL)
    glass = await pim.say(CAROL, f"breakglass prod-db-admin code {pim.code(carol)} reason fire")
    assert glass.ok, glass.text
    pim.clock.advance(timedelta(seconds=30))
    refused = await pim.say(CAROL, f"extend prod-db-admin for 30m code {pim.code(carol)}")
    assert not refused.ok and "Break-glass access cannot be extended" in refused.text


async def test_refusing_someone_elses_request_is_audited(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    reply = await pim.click(CAROL, ActionId.DEACTIVATE, rid)
    assert not reply.ok and "not yours" in reply.text
    async with db.read() as session:
        events = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "deactivation.refused"))).scalars().all()
    assert [(e.actor, e.detail["reason"]) for e in events] == [(CAROL, "not_owner")]
