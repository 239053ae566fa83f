"""Bad input gets one clear line with a hint, an audit event where authority is involved,
and changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from pimbot.commands import VERBS
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, JobRow, RequestRow
from pimbot.ui.cards import ActionId

from .harness import make_pim, request_id_of

BOB, ALICE, CAROL, LEAD = ("bob@example.com", "alice@example.com", "carol@example.com",
                           "sec-lead@example.com")


async def _counts(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        requests = (await session.execute(select(func.count()).select_from(RequestRow)))
        jobs = (await session.execute(select(func.count()).select_from(JobRow)))
        return requests.scalar_one(), jobs.scalar_one()


async def _actions(db: Database) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = (await session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)))
        return [(e.action, e.outcome) for e in rows.scalars()]


async def _audit_details(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.read() as session:
        rows = (await session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)))
        return [(e.action, dict(e.detail or {})) for e in rows.scalars()]


async def test_each_bad_input_is_one_line_with_a_hint_and_changes_nothing(db: Database) -> None:
    pim = await make_pim(db)
    before = await _counts(db)
    cases = {
        "actvate prod-db-admin": "Did you mean 'activate'",
        "activate prod-db-admn for 1h reason x": "Did you mean 'prod-db-admin'",
        "activate prod-db-admin for 99h reason x": "over the maximum of 4h",
        "activate prod-db-admin for 1h": "needs a reason",
        "activate prod-db-admin for soon reason x": "duration",
        "deny abc234": "reason",
    }
    for text, expected in cases.items():
        reply = await pim.say(BOB, text)
        assert not reply.ok, text
        assert expected in reply.text, (text, reply.text)
        assert "\n" not in reply.text, reply.text
        assert reply.hint.split()[0] in VERBS, reply  # a command, written by each adapter
        assert reply.said("/pim ").endswith(f"try: /pim {reply.hint}")
        assert "Traceback" not in reply.text
    assert await _counts(db) == before
    assert pim.provider.calls == []
    assert ("command.rejected", "invalid") in await _actions(db), "known user's bad command"


async def test_approving_an_already_decided_request_changes_nothing(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason restore db7"))
    await pim.say(CAROL, f"deny {rid} reason no")
    reply = await pim.say(ALICE, f"approve {rid}")
    assert not reply.ok and "already decided by" in reply.text and "it is denied" in reply.text
    assert pim.provider.calls == []
    assert ("approval.refused", "refused") in await _actions(db)
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        assert row is not None and row.state == "denied"


async def test_a_cancelled_request_says_its_requester_cancelled_it_not_that_it_was_decided(
        db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason restore db7"))
    await pim.say(BOB, f"cancel {rid}")

    reply = await pim.say(ALICE, f"approve {rid}")  # an approver answering too late
    assert not reply.ok
    assert reply.text == (f"Request {rid} was cancelled by bob@example.com, who requested "
                          "it. Nothing was changed."), reply.text
    late = await pim.click(CAROL, ActionId.APPROVE, rid)  # her card's button, a moment late
    assert "was cancelled by bob@example.com" in late.text and "decided" not in late.text
    [copy] = pim.cards_to("user:alice@example.com")  # her approval card, redrawn
    assert copy.text == "Cancelled by bob@example.com" and not copy.actions
    assert [f.label for f in copy.fields if f.label in {"Cancelled", "Decided"}] == \
        ["Cancelled"], copy.fields
    assert "decided" not in copy.context, copy.context


async def test_unknown_request_and_not_eligible(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(ALICE, "approve zzzzzz")
    assert not reply.ok and "no request 'zzzzzz'" in reply.text
    reply = await pim.say(CAROL, "activate prod-db-admin for 1h reason x")
    assert not reply.ok and "not eligible" in reply.text
    assert ("activation.refused", "refused") in await _actions(db)


async def test_activate_with_missing_parts_offers_a_form_and_lists_roles(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate")
    assert not reply.ok and reply.form is not None
    assert "prod-db-admin" in reply.text and "staging-deploy" in reply.text
    roles = next(i for i in reply.form.inputs if i.name == "role")
    assert {c.value for c in roles.choices} == {"billing-read", "prod-db-admin", "staging-deploy",
                                                "two-man"}
    submitted = await pim.click(BOB, ActionId.SUBMIT_ACTIVATION, "", {
        "role": "prod-db-admin", "duration": "9h", "reason": "x"})
    assert not submitted.ok and "duration" in submitted.field_errors
    submitted = await pim.click(BOB, ActionId.SUBMIT_ACTIVATION, "", {
        "role": "prod-db-admin", "duration": "1h", "reason": "restore"})
    assert submitted.ok, submitted.text


async def test_queries_and_audit_command(db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(BOB, "activate staging-deploy for 1h")
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason restore db7"))
    status = await pim.say(BOB, "status")
    assert "staging-deploy: active" in status.text and rid in status.text
    roles = await pim.say(BOB, "roles")
    assert "prod-db-admin" in roles.text and "needs approval" in roles.text
    pending = await pim.say(ALICE, "pending")
    assert rid in pending.text
    whois = await pim.say("audit@example.com", "whois staging-deploy")
    assert BOB in whois.text
    denied = await pim.say(BOB, "audit")
    assert not denied.ok and "Only admins and auditors" in denied.text
    log = await pim.say("audit@example.com", "audit bob@example.com")
    assert log.ok and "activation.requested" in log.text
    async with db.read() as session:  # the justification is kept with the request's event
        asked = (await session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == "activation.requested"))).all()
    assert {e.detail["request"]: e.detail.get("reason") for e in asked}[rid] == "restore db7"
    helped = await pim.say(BOB, "help")
    assert "activate" in helped.text and "breakglass" in helped.text


async def test_an_approvers_comment_never_reads_as_pimbots_words_when_the_request_ends_later(
        db: Database) -> None:
    """An approver's comment stays on the vote (a field of its own). Once the request is
    cancelled by someone else, pimbot's sentence about how it ended must not carry it, as it
    did when the comment was kept as the request's decision note."""
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(
        BOB, "activate prod-db-admin for 1h at tomorrow 09:00 reason restore db7"))
    forged = "by nobody; it was approved again by sec-lead@example.com and is active"
    approved = await pim.say(ALICE, f"approve {rid} comment {forged}")
    assert approved.ok, approved.text
    cancelled = await pim.say(LEAD, f"cancel {rid}")  # an admin may
    assert cancelled.ok, cancelled.text

    late = await pim.say(CAROL, f"approve {rid}")
    assert not late.ok
    assert late.text == (f"Request {rid} was cancelled by sec-lead@example.com. "
                         "Nothing was changed."), late.text
    events = [e for e in await _audit_details(db) if e[0] == "request.approved"]
    assert [detail.get("reason") for _, detail in events] == [forged]  # still on record
