"""Request → approve → grant → reminder → expiry, and the other ends of a request's life."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pimbot.domain.errors import PimError
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.ui.cards import ActionId, Field, UserText
from pimbot.workflow.actor import Actor
from pimbot.workflow.turns import first_seen, turn_scope
from pimbot.workflow.usecases.ending import cancel

from .harness import make_pim, request_id_of

BOB, ALICE, CAROL, LEAD = ("bob@example.com", "alice@example.com", "carol@example.com",
                           "sec-lead@example.com")


async def test_approved_activation_is_granted_reminded_and_revoked_at_expiry(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "pim activate prod-db-admin for 1h reason restore backup")
    rid = request_id_of(reply)
    assert "waiting for approval" in reply.card.title  # type: ignore[union-attr]
    assert pim.provider.actions("grant") == []

    approval = pim.cards_to(f"user:{ALICE}")[0]
    assert [b.action for b in approval.actions] == [ActionId.APPROVE, ActionId.DENY]
    assert pim.cards_to(f"user:{CAROL}"), "every approver gets the card"
    assert pim.cards_to("channel:slack:#sec-alerts"), "the role's channel sees the request"
    assert not pim.cards_to(f"user:{BOB}"), "nobody is notified of their own request"

    await pim.click(ALICE, ActionId.APPROVE, rid)
    assert [c.email for c in pim.provider.actions("grant")] == [BOB]
    alice_copy = pim.cards_to(f"user:{ALICE}")[0]
    assert alice_copy.actions == () and "Approved by alice@example.com" in alice_copy.text
    carol_copy = pim.cards_to(f"user:{CAROL}")[0]
    assert carol_copy.actions == (), "every approver's copy is redrawn"
    assert any("active" in c.title for c in pim.cards_to(f"user:{BOB}"))

    await pim.advance(timedelta(minutes=50, seconds=1))
    reminder = pim.cards_to(f"user:{BOB}")[-1]
    assert "ends soon" in reminder.title
    assert {b.action for b in reminder.actions} == {ActionId.EXTEND, ActionId.DEACTIVATE}
    assert pim.provider.actions("revoke") == []

    await pim.advance(timedelta(minutes=10))
    assert [c.email for c in pim.provider.actions("revoke")] == [BOB]
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.state == "expired" and row.revoked_at is not None


async def test_clock_starts_at_grant_not_at_request(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
    await pim.advance(timedelta(hours=3))
    await pim.click(ALICE, ActionId.APPROVE, rid)
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.granted_at == pim.clock.now()
        assert row.expires_at == pim.clock.now() + timedelta(hours=1)


async def test_role_without_approval_is_granted_at_once_and_deactivated(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate staging-deploy")
    assert reply.ok, reply.text
    assert [c.role for c in pim.provider.actions("grant")] == ["staging-deploy"]
    reply = await pim.say(BOB, "deactivate staging-deploy")
    assert reply.ok, reply.text
    assert [c.role for c in pim.provider.actions("revoke")] == ["staging-deploy"]


async def test_denial_notifies_requester_and_grants_nothing(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin reason curious"))
    click = await pim.click(CAROL, ActionId.DENY, rid)
    assert click.form is not None and not click.ok
    reply = await pim.say(CAROL, f"deny {rid} reason not during the freeze")
    assert reply.ok, reply.text
    assert pim.provider.calls == []
    bob = pim.cards_to(f"user:{BOB}")[-1]
    assert "denied" in bob.title and "carol@example.com" in bob.text
    assert Field("Denial reason", UserText("not during the freeze")) in bob.fields


async def test_the_approvers_comment_reaches_the_requester_as_their_words(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason restore"))
    reply = await pim.say(ALICE, f"approve {rid} comment ok for INC-42, *be quick*")
    assert reply.ok, reply.text
    bob = pim.cards_to(f"user:{BOB}")[-1]
    assert "active" in bob.title
    comment = Field("Comment from alice@example.com", UserText("ok for INC-42, *be quick*"))
    assert comment in bob.fields, "the requester sees what the approver wrote"
    assert "INC-42" not in bob.text, "never inside pimbot's own words"
    assert comment in pim.cards_to(f"user:{CAROL}")[-1].fields, "the other approvers too"


async def test_self_approval_is_refused_and_audited(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(ALICE, "activate prod-db-admin reason hotfix"))
    reply = await pim.click(ALICE, ActionId.APPROVE, rid)
    assert not reply.ok and "your own request" in reply.text
    reply = await pim.say(ALICE, f"approve {rid}")
    assert not reply.ok
    assert pim.provider.calls == []
    async with db.read() as session:
        events = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "approval.refused"))).scalars().all()
    assert [e.detail["reason"] for e in events] == ["self_approval", "self_approval"]


async def test_someone_with_no_part_in_a_request_learns_nothing_of_it_by_its_id(
    db: Database,
) -> None:
    """An id seen in a screenshot or a forwarded message: a click or a typed approve/deny by
    someone who is neither its requester nor an approver says nothing of the request (its
    state, role, requester, approvers), whether it waits or was decided; the refusal is
    audited and nothing changes."""
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason hotfix"))
    outsider = "mallory@example.com"
    replies = [await pim.click(outsider, ActionId.APPROVE, rid),
               await pim.say(outsider, f"deny {rid} reason looks wrong")]
    await pim.click(ALICE, ActionId.APPROVE, rid)
    replies += [await pim.click(outsider, ActionId.APPROVE, rid),
                await pim.click(outsider, ActionId.DENY, rid),
                await pim.say(outsider, f"approve {rid}")]
    for reply in replies:
        assert not reply.ok
        assert reply.text == f"You are not an approver of request {rid}. Nothing was changed."
        assert reply.card is None
    assert [c.email for c in pim.provider.actions("grant")] == [BOB], "granted once, by alice"
    async with db.read() as session:
        refused = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.actor == outsider))).scalars().all()
        row = await session.get(RequestRow, rid)
    assert [(e.action, e.detail["reason"]) for e in refused] == [
        ("approval.refused", "not_approver"), ("denial.refused", "not_approver"),
        ("approval.refused", "not_approver"), ("denial.refused", "not_approver"),
        ("approval.refused", "not_approver")]
    assert row is not None and row.state == "active"


async def test_non_approver_click_is_refused_and_audited(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin reason hotfix"))
    reply = await pim.click("carol@example.com", ActionId.APPROVE, rid)  # carol may approve…
    assert reply.ok
    rid2 = request_id_of(await pim.say(ALICE, "activate prod-db-admin reason hotfix"))
    reply = await pim.click(BOB, ActionId.APPROVE, rid2)  # …bob may not
    assert not reply.ok and "not an approver" in reply.text
    assert [c.email for c in pim.provider.actions("grant")] == [BOB]


async def test_pending_request_times_out(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin reason later"))
    await pim.advance(timedelta(hours=12, seconds=1))
    assert any(c.title.startswith("Reminder") for c in pim.cards_to(f"user:{ALICE}"))
    await pim.advance(timedelta(hours=12))
    bob = pim.cards_to(f"user:{BOB}")[-1]
    assert "timed out" in bob.title
    reply = await pim.click(ALICE, ActionId.APPROVE, rid)
    assert not reply.ok and "timed out" in reply.text
    assert pim.provider.calls == []


async def test_two_of_three_approvals(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate two-man for 1h reason migration"))
    await pim.click(ALICE, ActionId.APPROVE, rid)
    assert pim.provider.calls == []
    assert "1 of 2" in str(pim.cards_to(f"user:{CAROL}")[0].fields)
    reply = await pim.click(ALICE, ActionId.APPROVE, rid)
    assert not reply.ok and "already answered" in reply.text
    await pim.click(LEAD, ActionId.APPROVE, rid)
    assert len(pim.provider.actions("grant")) == 1


async def test_a_second_activation_of_an_active_role_is_refused_and_the_first_kept(
        db: Database) -> None:
    """As Entra PIM refuses a new activation of an active assignment: extend is the way."""
    pim = await make_pim(db)
    first = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
    reply = await pim.say(BOB, "activate staging-deploy for 2h")
    assert not reply.ok
    assert reply.text.startswith("staging-deploy is already active for you until ")
    assert f"(request {first})" in reply.text and "use extend" in reply.text
    assert reply.hint == "extend staging-deploy"
    assert len(pim.provider.actions("grant")) == 1
    async with db.read() as session:
        refusals = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "activation.refused"))).scalars().all()
    assert [(e.subject, e.detail["reason"], e.detail["request"]) for e in refusals] == [
        ("staging-deploy", "already_active", first)]
    await pim.advance(timedelta(hours=1, seconds=1))  # the first ends as it was asked
    assert [r.activation_id for r in pim.provider.actions("revoke")] == [first]
    reply = await pim.say(BOB, "activate staging-deploy for 2h")  # once ended, it may again
    assert reply.ok, reply.text


async def test_cancel_by_requester(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin reason x"))
    reply = await pim.say(ALICE, f"cancel {rid}")
    assert not reply.ok and "not yours" in reply.text
    reply = await pim.say(BOB, f"cancel {rid}")
    assert reply.ok, reply.text
    assert pim.cards_to(f"user:{ALICE}")[0].actions == ()
    assert not (await pim.click(ALICE, ActionId.APPROVE, rid)).ok


async def test_a_cancel_retried_after_losing_to_an_approval_does_not_undo_it(
        db: Database) -> None:
    """Guard: ``turns.first_seen`` in cancel. A turn is retried when its write lost a race;
    the retry of a cancel typed against a waiting request finds it approved and says so."""
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
    with turn_scope():  # the cancel's first attempt read the request while it was waiting
        assert first_seen(rid, "pending_approval") == "pending_approval"
        approved = await pim.core.handle_action(Actor(ALICE), ActionId.APPROVE, rid)
        assert approved.ok, approved.text
        with pytest.raises(PimError) as late:  # …and this is its retry, after the approval
            await cancel(pim.core.ctx, Actor(BOB), rid)
    assert "at the same moment; nothing was cancelled" in late.value.message
    await pim.core.drain()
    assert [c.email for c in pim.provider.actions("grant")] == [BOB], "the approval stands"
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.state == "active"
    # Typed afresh (not a retry), cancelling an approved request waiting for its start works.
    later = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h at +2h"))
    assert (await pim.say(BOB, f"cancel {later}")).ok


async def test_scheduled_start(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate staging-deploy for 1h at +2h")
    assert reply.ok, reply.text
    assert pim.provider.calls == []
    await pim.advance(timedelta(hours=2))
    assert len(pim.provider.actions("grant")) == 1


async def test_extend_without_and_with_approval(db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(BOB, "activate staging-deploy for 1h")
    reply = await pim.say(BOB, "extend staging-deploy for 1h")
    assert reply.ok, reply.text
    await pim.advance(timedelta(hours=1, minutes=30))
    assert pim.provider.actions("revoke") == []
    await pim.advance(timedelta(minutes=31))
    assert len(pim.provider.actions("revoke")) == 1

    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
    await pim.click(ALICE, ActionId.APPROVE, rid)
    reply = await pim.say(BOB, "extend prod-db-admin for 30m")
    ext = request_id_of(reply)
    assert ext != rid
    await pim.click(CAROL, ActionId.APPROVE, ext)
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.expires_at == pim.clock.now() + timedelta(minutes=90)
    reply = await pim.say(BOB, "extend prod-db-admin for 4h")
    assert not reply.ok and "maximum" in reply.text


async def test_ticket_rule(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate billing-read ticket FOO-1 reason audit")
    assert not reply.ok and "does not match" in reply.text
    reply = await pim.say(BOB, "activate billing-read ticket INC-7 reason audit")
    assert reply.ok, reply.text


async def test_active_assignment_is_granted_and_unassign_revokes(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(LEAD, "assign carol@example.com prod-db-admin active for 2h")
    assert reply.ok, reply.text
    assert [(c.email, c.role) for c in pim.provider.actions("grant")] == [
        (CAROL, "prod-db-admin")]
    reply = await pim.say(BOB, "assign carol@example.com prod-db-admin active")
    assert not reply.ok and "Only admins" in reply.text
    reply = await pim.say(LEAD, "unassign carol@example.com prod-db-admin")
    assert reply.ok, reply.text
    assert [(c.email, c.role) for c in pim.provider.actions("revoke")] == [
        (CAROL, "prod-db-admin")]


async def test_eligible_assignment_by_admin_enables_activation(db: Database) -> None:
    pim = await make_pim(db)
    assert not (await pim.say(CAROL, "activate prod-db-admin reason x")).ok
    await pim.say(LEAD, "assign carol@example.com prod-db-admin eligible until 2027-03-31")
    reply = await pim.say(CAROL, "activate prod-db-admin reason x")
    assert reply.ok, reply.text


async def test_an_unreachable_approver_is_reported_not_skipped(db: Database) -> None:
    pim = await make_pim(db)
    pim.chat.unreachable.add(CAROL)
    await pim.say(BOB, "activate prod-db-admin for 1h reason x")
    assert pim.cards_to(f"user:{ALICE}"), "the reachable approver still gets the card"
    told = [c.title for c in pim.cards_to(f"user:{BOB}")]
    assert f"pimbot could not reach {CAROL}" in told
    channel = [c.title for c in pim.cards_to("channel:slack:#sec-alerts")]
    assert f"pimbot could not reach {CAROL}" in channel
