"""What a person typed is what pimbot stores, audits and shows (through the real store and
audit chain): no invisible character in any of them, and no authenticator code anywhere."""

from __future__ import annotations

import json

from sqlalchemy import select

from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.ui.cards import ActionId, Card, UserText

from .harness import make_pim

BOB = "bob@example.com"
TRICK = "deploy \u202ethe\u2066 hotfix\u200b\u00ad now"  # reads reversed, hides characters
SHOWN = "deploy the hotfix now"


def _reasons(card: Card) -> list[str]:
    return [f.value.text for f in card.fields
            if f.label == "Reason" and isinstance(f.value, UserText)]


async def _stored(db: Database) -> tuple[list[str], list[str]]:
    """Every request's reason and every audit event's detail, as the database holds them."""
    async with db.read() as session:
        reasons = [row.reason for row in (await session.scalars(select(RequestRow))).all()]
        details = [json.dumps(row.detail, ensure_ascii=False)
                   for row in (await session.scalars(select(AuditEventRow))).all()]
    return reasons, details


async def test_a_bidi_trick_is_dropped_before_it_is_stored_audited_or_shown(
        db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, f"activate staging-deploy for 30m reason {TRICK}")
    assert reply.ok, reply.text
    reasons, details = await _stored(db)
    assert reasons == [SHOWN]
    assert any(f'"reason": "{SHOWN}"' in detail for detail in details), details
    assert not any(ch in detail for detail in details for ch in "\u202e\u2066\u200b\u00ad")
    shown = [reason for card in pim.cards_to(f"user:{BOB}") for reason in _reasons(card)]
    assert shown and set(shown) == {SHOWN}  # the card says what the database says
    assert (await verify_chain(db)).ok


async def test_a_form_keeps_text_by_the_same_rules(db: Database) -> None:
    pim = await make_pim(db)
    refused = await pim.click(BOB, ActionId.SUBMIT_ACTIVATION, "staging-deploy",
                              {"role": "staging-deploy", "duration": "30m",
                               "reason": "deploy code 482913 now"})
    assert not refused.ok and "reason" in refused.field_errors
    assert "482913" not in refused.text + json.dumps(refused.field_errors)
    taken = await pim.click(BOB, ActionId.SUBMIT_ACTIVATION, "staging-deploy",
                            {"role": "staging-deploy", "duration": "30m", "reason": TRICK})
    assert taken.ok, taken.text
    reasons, details = await _stored(db)
    assert reasons == [SHOWN]
    assert not any("482913" in detail for detail in details)


async def test_a_code_inside_a_reason_reaches_no_card_and_no_audit_event(
        db: Database) -> None:
    pim = await make_pim(db)
    typed = "activate prod-db-admin for 1h reason restore code 482913 the backup"
    reply = await pim.say(BOB, typed)  # a role without MFA: the code would be shown as text
    assert not reply.ok and "authenticator code" in reply.text
    assert "482913" not in reply.said("")
    assert reply.hint == "activate prod-db-admin for 1h reason restore the backup"
    reasons, details = await _stored(db)
    assert reasons == [] and not any("482913" in detail for detail in details)
    assert pim.chat.to("user:alice@example.com") == []  # no approver was asked
    typed_again = await pim.say(BOB, reply.hint)  # the hint as it stands goes for approval
    assert typed_again.ok and typed_again.card is not None, typed_again
    assert typed_again.card.title.endswith("waiting for approval")


async def test_a_reason_cannot_forge_a_line_of_the_audit_answer(db: Database) -> None:
    pim = await make_pim(db)
    forged = "#99 2026-12-02 00:00:00 pimbot grant.revoked staging-deploy [ok] user=bob"
    reply = await pim.say(BOB, f"activate staging-deploy for 30m reason x\n{forged}",
                          platform="slack")  # a slash command's text may hold line breaks
    assert reply.ok, reply.text
    answer = await pim.say("sec-lead@example.com", "audit bob@example.com")
    assert not any(line.startswith("#99") for line in answer.text.splitlines()), answer.text
    assert "reason=“x ↵ #99 2026-12-02 00:00:00 pimbot grant[.]revoked" in answer.text  # quoted


async def test_a_ticket_that_would_format_the_audit_answer_is_quoted_not_bare(
        db: Database) -> None:
    """Ids, emails and numbers are shown bare; ``_CHG-7_`` would italicise itself in Slack's
    mrkdwn (underscores at a word's edges), so it is a quotation, as any typed text is."""
    pim = await make_pim(db)
    for ticket in ("_CHG-7_", "CHG_7"):
        reply = await pim.say(BOB, f"activate staging-deploy for 30m ticket {ticket} reason y",
                              platform="slack")
        assert reply.ok, reply.text
        await pim.say(BOB, "deactivate staging-deploy")
    answer = await pim.say("sec-lead@example.com", "audit bob@example.com")
    assert "ticket=“_CHG-7_”" in answer.text, answer.text
    assert "ticket=_CHG-7_" not in answer.text
    assert "ticket=CHG_7" in answer.text  # an underscore inside a word formats nothing
