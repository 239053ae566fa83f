"""MFA inside chat: step-up at activation, at approval, and for break-glass."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.ui.cards import ActionId
from pimbot.workflow.actor import Actor

from .harness import POLICY, make_pim, request_id_of

BOB, ALICE, CAROL, LEAD = ("bob@example.com", "alice@example.com", "carol@example.com",
                           "sec-lead@example.com")

MFA_POLICY = POLICY.replace(
    "    require_justification: true\n    approval: {required: true, approvers: [group:dba-leads], "
    "min_approvals: 1, timeout: 24h}",
    "    require_justification: true\n    require_mfa: true\n    approval: {required: true, "
    "approvers: [group:dba-leads], min_approvals: 1, timeout: 24h, require_mfa: true}",
)


async def test_activation_needs_a_valid_code(db: Database) -> None:
    assert MFA_POLICY != POLICY
    pim = await make_pim(db, MFA_POLICY)
    reply = await pim.say(BOB, "activate prod-db-admin for 1h reason x")
    assert not reply.ok and reply.form is not None and "authenticator code" in reply.text
    reply = await pim.say(BOB, "activate prod-db-admin for 1h code 123456 reason x")
    assert not reply.ok and "not enrolled" in reply.text.lower()
    totp = await pim.enrol(BOB)
    reply = await pim.say(BOB, f"activate prod-db-admin for 1h code {pim.wrong_code(totp)} "
                               "reason x")
    assert not reply.ok
    reply = await pim.say(BOB, f"activate prod-db-admin for 1h code {pim.code(totp)} reason x")
    assert reply.ok, reply.text
    replay = await pim.say(BOB, f"activate staging-deploy code {pim.code(totp)}")
    assert replay.ok  # staging needs no MFA: the code clause is simply not needed
    async with db.read() as session:
        details = [e.detail for e in (await session.execute(select(AuditEventRow))).scalars()]
    assert not any(pim.code(totp) in str(d) for d in details), "codes never reach the audit log"


async def test_approval_step_up_blocks_until_the_code_is_valid(db: Database) -> None:
    pim = await make_pim(db, MFA_POLICY)
    bob = await pim.enrol(BOB)
    rid = request_id_of(await pim.say(
        BOB, f"activate prod-db-admin for 1h code {pim.code(bob)} reason x"))
    click = await pim.click(ALICE, ActionId.APPROVE, rid)
    assert not click.ok and click.form is not None, "the click opens a form for the code"
    assert pim.provider.calls == []
    alice = await pim.enrol(ALICE)
    bad = await pim.click(ALICE, ActionId.SUBMIT_APPROVE, rid, {"code": "999999"})
    assert not bad.ok and "code" in bad.field_errors
    assert pim.provider.calls == []
    good = await pim.click(ALICE, ActionId.SUBMIT_APPROVE, rid, {"code": pim.code(alice)})
    assert good.ok, good.text
    assert len(pim.provider.actions("grant")) == 1


async def test_breakglass_skips_approval_but_not_mfa_and_alerts(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "breakglass prod-db-admin reason db down")
    assert not reply.ok and pim.provider.calls == []
    totp = await pim.enrol(BOB)
    reply = await pim.say(BOB, f"breakglass prod-db-admin for 4h code {pim.code(totp)} reason "
                               "db down")
    assert not reply.ok and "maximum" in reply.text
    reply = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(totp)} reason db down")
    assert reply.ok, reply.text
    assert len(pim.provider.actions("grant")) == 1
    assert any("BREAK-GLASS" in c.title for c in pim.cards_to("channel:slack:#sec-alerts"))
    assert any("BREAK-GLASS" in c.title for c in pim.cards_to(f"user:{LEAD}"))
    reply = await pim.say(BOB, f"breakglass staging-deploy code {pim.code(totp)} reason x")
    assert not reply.ok and "does not allow" in reply.text
    async with db.read() as session:
        actions = set((await session.execute(select(AuditEventRow.action))).scalars())
    assert "breakglass.review_required" in actions


async def test_hard_lock_needs_an_admin_reset_with_the_admins_own_code(db: Database) -> None:
    pim = await make_pim(db)
    bob = await pim.enrol(BOB)
    for _ in range(20):
        wrong = pim.wrong_code(bob)  # the right code moves with the clock: never hit it
        await pim.say(BOB, f"breakglass prod-db-admin code {wrong} reason db down")
        pim.clock.advance(timedelta(minutes=16))  # wait out each 15-minute lock
    reply = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(bob)} reason db down")
    assert not reply.ok and "admin" in reply.text.lower(), reply.text
    assert pim.provider.calls == []

    refused = await pim.say(ALICE, "mfa reset bob@example.com code 123456")
    assert not refused.ok and "Only admins" in refused.text
    lead = await pim.enrol(LEAD)
    no_code = await pim.say(LEAD, "mfa reset bob@example.com")
    assert not no_code.ok, "the admin's own MFA is required"
    done = await pim.say(LEAD, f"mfa reset bob@example.com code {pim.code(lead)}")
    assert done.ok, done.text
    status = await pim.say(BOB, "mfa status")
    assert "not enrolled" in status.text
    bob = await pim.enrol(BOB)
    reply = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(bob)} reason db down")
    assert reply.ok, reply.text


async def test_enrolment_is_refused_in_a_shared_channel(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.core.handle_text(Actor(BOB, "slack", in_direct_message=False), "mfa enroll")
    assert not reply.ok and "direct message" in reply.text
    assert reply.card is None, "no secret is shown in a channel"


async def test_replacing_an_authenticator_needs_a_code_from_the_current_one(db: Database) -> None:
    pim = await make_pim(db)
    old = await pim.enrol(BOB)
    hijack = await pim.say(BOB, "mfa enroll")
    assert not hijack.ok and hijack.card is None and "already enrolled" in hijack.text
    sent = len(pim.chat.to(f"user:{BOB}"))
    reply = await pim.say(BOB, f"mfa enroll code {pim.code(old)}")
    assert reply.ok and "Key: " in pim.chat.to(f"user:{BOB}")[sent].card.text, reply.text
    # Until the new one is confirmed, the old authenticator keeps working.
    pim.clock.advance(timedelta(seconds=30))
    ok = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(old)} reason db down")
    assert ok.ok, ok.text


async def test_admins_hear_of_every_new_authenticator(db: Database) -> None:
    pim = await make_pim(db)
    await pim.enrol(BOB)
    titles = [c.title for c in pim.cards_to(f"user:{LEAD}")]
    assert f"{BOB} set up a new authenticator for pimbot" in titles
    assert not any("authenticator" in c.title for c in pim.cards_to(f"user:{BOB}")
                   if c.title.startswith(BOB))


async def test_an_admin_reset_deletes_the_enrolment_message_waiting_for_confirmation(
    db: Database,
) -> None:
    pim = await make_pim(db)
    lead = await pim.enrol(LEAD)
    assert await pim.say(BOB, "mfa enroll")
    [waiting] = [d for d in pim.chat.visible_to(f"user:{BOB}") if "Key: " in d.card.text]
    done = await pim.say(LEAD, f"mfa reset bob@example.com code {pim.code(lead)}")
    assert done.ok, done.text
    assert waiting.deleted, "the key it held is void, and it is gone at once"
    assert not any("Key: " in d.card.text for d in pim.chat.visible_to(f"user:{LEAD}"))


async def test_a_platform_refusing_the_delete_is_retried_until_it_is_done(db: Database) -> None:
    pim = await make_pim(db)
    pim.chat.fail_deletes = 3
    await pim.enrol(BOB)
    [enrolment] = [d for d in pim.chat.to(f"user:{BOB}") if "Key: " in d.card.text]
    assert not enrolment.deleted and pim.chat.delete_calls == 1
    for _ in range(3):
        await pim.advance(timedelta(seconds=10))  # each retry's backoff
    assert enrolment.deleted and pim.chat.delete_calls == 4
    titles = [d.card.title for d in pim.chat.visible_to(f"user:{BOB}")]
    assert titles.count("pimbot deleted the message with your authenticator key") == 1


UNUSED = "needs no authenticator code, so the code you gave was not checked or used."


async def test_a_code_typed_last_is_used_and_one_a_role_does_not_need_is_said_unused(
        db: Database) -> None:
    pim = await make_pim(db, MFA_POLICY)
    totp = await pim.enrol(BOB)
    code = pim.code(totp)
    staging = await pim.say(BOB, f"activate staging-deploy for 30m reason deploy code {code}")
    assert staging.ok, staging.text
    assert staging.text == f"Activating staging-deploy {UNUSED}", "told, and it still proceeds"
    assert staging.card is not None and staging.card.title.endswith(": approved")
    # Not checked, so not spent: the same code still opens a role that asks for one, typed
    # after the reason as the newcomer did; it is the code, not part of the reason.
    prod = await pim.say(BOB, f"activate prod-db-admin for 1h reason restore code {code}")
    assert prod.ok and UNUSED not in prod.text, prod.text
    async with db.read() as session:
        reasons = (await session.execute(select(RequestRow.role, RequestRow.reason)
                                         .order_by(RequestRow.requested_at))).all()
        details = [e.detail for e in (await session.execute(select(AuditEventRow))).scalars()]
    assert [tuple(r) for r in reasons] == [("staging-deploy", "deploy"),
                                           ("prod-db-admin", "restore")]
    assert not any(code in str(d) for d in details), "the code is in no reason or event"


async def test_an_approval_or_extension_code_nobody_asked_for_is_said_unused(
        db: Database) -> None:
    pim = await make_pim(db)  # no MFA anywhere
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
    approved = await pim.say(ALICE, f"approve {rid} comment fine code 123456")
    assert approved.ok and approved.text.endswith(
        f"Approving a prod-db-admin request {UNUSED}"), approved.text
    assert [c.email for c in pim.provider.actions("grant")] == [BOB]
    extended = await pim.say(BOB, "extend prod-db-admin for 30m code 123456")
    assert extended.ok and UNUSED in extended.text, extended.text
    plain = await pim.say(BOB, "activate staging-deploy for 30m reason deploy")
    assert plain.ok and UNUSED not in plain.text
