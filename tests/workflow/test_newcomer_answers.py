"""What a newcomer typing into pimbot noticed: each answer says what is wrong in the words of
the thing typed, and its hint is a command that makes sense for that person."""

from __future__ import annotations

import re

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.store.database import Database
from pimbot.ui.cards import ActionId

from .harness import POLICY, make_pim, request_id_of
from .test_mfa_flow import MFA_POLICY

BOB, ALICE, CAROL, LEAD = ("bob@example.com", "alice@example.com", "carol@example.com",
                           "sec-lead@example.com")


async def test_review_answers_ask_for_a_review_item_id(db: Database) -> None:
    pim = await make_pim(db)
    keep = await pim.say(LEAD, "review keep")
    assert not keep.ok and "needs a review item id" in keep.text, keep.text
    assert keep.hint == "review keep <review item id>", keep.hint
    remove = await pim.say(LEAD, "review remove zz")
    assert not remove.ok and "<request id>" not in remove.hint
    assert remove.hint == "review remove zz reason left the team", remove.hint
    bad = await pim.say(LEAD, "review keep #!")
    assert "is not a review item id" in bad.text, bad.text


async def test_a_trailing_code_of_the_wrong_length_is_refused_and_never_hinted(
        db: Database) -> None:
    pim = await make_pim(db, MFA_POLICY)
    for typed, digits in (("code 12345", 5), ("mfa code 12345", 5), ("code 1234567", 7)):
        reply = await pim.say(BOB, f"activate prod-db-admin for 1h reason test {typed}")
        assert not reply.ok and f"a code has 6 digits (you typed {digits})" in reply.text
        number = typed.rsplit(" ", 1)[1]  # never echoed, neither in the text nor the hint
        assert not re.search(rf"(?<!\d){number}(?!\d)", reply.text + reply.hint), reply
        assert reply.hint == "activate prod-db-admin for 1h code 123456 reason test", reply.hint
    assert pim.chat.deliveries == []  # nothing reached an approver
    # ``mfa code`` with 6 digits is the code clause, as ``code`` is: "mfa" is not reason text.
    enrolled = await pim.enrol(BOB)
    asked = await pim.say(BOB, f"activate prod-db-admin for 1h reason test mfa code "
                               f"{pim.code(enrolled)}")
    assert asked.ok, asked.text
    card = pim.cards_to(f"user:{ALICE}")[-1]
    assert [f.value.text for f in card.fields if f.label == "Reason"] == ["test"]  # type: ignore[union-attr]


async def test_an_error_in_code_is_still_a_reason(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate prod-db-admin for 1h reason saw error code 404")
    assert reply.ok, reply.text


async def test_hints_keep_the_role_duration_and_reason_typed(db: Database) -> None:
    pim = await make_pim(db)
    cases = {
        "activat staging-deploy for 30m reason x": "activate staging-deploy for 30m reason x",
        "activate staging-deploy for 0m reason my words":
            "activate staging-deploy for 1h reason my words",
        "activate staging-deploy for -5m reason my words":
            "activate staging-deploy for 1h reason my words",
        "activate staging-deploy for abc reason my words":
            "activate staging-deploy for 1h reason my words",
        "activate staging-deploy for 1y reason my words":
            "activate staging-deploy for 1h reason my words",
        "activate staging-deploy at soonish for 30m reason my words":
            "activate staging-deploy for 30m reason my words",
        "deactivat staging-deploy": "deactivate staging-deploy",
    }
    for typed, hint in cases.items():
        reply = await pim.say(BOB, typed)
        assert not reply.ok and reply.hint == hint, (typed, reply.text, reply.hint)


async def test_a_misspelt_verb_never_writes_a_code_back(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activat prod-db-admin for 1h code 654321 reason x")
    assert "654321" not in reply.hint and "code 123456" in reply.hint, reply.hint


async def test_an_unknown_id_to_cancel_points_to_status(db: Database) -> None:
    pim = await make_pim(db)
    cancel = await pim.say(BOB, "cancel zzzzzzzz")
    assert not cancel.ok and "status lists your own requests" in cancel.text
    assert cancel.hint == "status"
    approve = await pim.say(ALICE, "approve zzzzzzzz")
    assert approve.hint == "pending" and "pending the ones waiting" in approve.text


async def test_a_missing_role_is_hinted_with_one_of_the_persons_roles(db: Database) -> None:
    pim = await make_pim(db)
    for typed in ("deactivate", "whois", "extend"):
        reply = await pim.say(CAROL, typed)  # carol is eligible for staging-deploy only
        assert not reply.ok and "like staging-deploy" in reply.text, reply.text
        assert reply.hint.startswith(f"{typed} staging-deploy"), reply.hint
        assert "prod-db" not in reply.text + reply.hint
    assert (await pim.say(BOB, "activate prod-db-admin for 1h reason x")).ok  # waits
    assert (await pim.say(BOB, "activate staging-deploy for 1h")).ok
    reply = await pim.say(BOB, "deactivate")  # the role bob holds now comes first
    assert reply.hint == "deactivate staging-deploy", reply.hint


async def test_a_missing_role_for_an_admin_names_a_role_that_exists(db: Database) -> None:
    policy = POLICY.replace("prod-db-admin", "warehouse-admin")
    pim = await make_pim(db, policy)
    reply = await pim.say(LEAD, "assign bob@example.com")
    assert not reply.ok and "prod-db" not in reply.text + reply.hint, reply
    assert "warehouse-admin" in reply.hint or "two-man" in reply.hint, reply.hint


async def test_audit_of_no_person_or_role_says_so(db: Database) -> None:
    pim = await make_pim(db)
    close = await pim.say(LEAD, "audit bob")
    assert not close.ok
    assert "There is no person or role called 'bob'. Did you mean 'bob@example.com'?" \
        in close.text, close.text
    assert close.hint == "audit bob@example.com"
    far = await pim.say(LEAD, "audit zebra")
    assert not far.ok and "no person or role called 'zebra'" in far.text
    assert (await pim.say(LEAD, "audit bob@example.com")).ok


async def test_mfa_reset_by_an_admin_not_enrolled_says_to_enrol_first(db: Database) -> None:
    pim = await make_pim(db, MFA_POLICY)
    reply = await pim.say(LEAD, "mfa reset zed@example.com")
    assert not reply.ok
    assert "Resetting someone's MFA needs your own authenticator code" in reply.text, reply.text
    assert "enrol first" in reply.text and reply.hint == "mfa enroll"


async def test_control_characters_where_a_role_goes_are_refused(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate \x00\x07 role")
    assert not reply.ok and "control characters" in reply.text, reply.text
    assert "unknown word" not in reply.text


async def test_a_reason_or_comment_is_capped_at_500_characters(db: Database) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, "activate prod-db-admin for 1h reason " + "x" * 5000)
    assert not reply.ok and "5,000 characters" in reply.text and "500" in reply.text
    assert pim.chat.deliveries == []
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason " + "x" * 500))
    comment = await pim.say(ALICE, f"approve {rid} comment " + "y" * 501)
    assert not comment.ok and "The comment is 501 characters" in comment.text
    # A form (Slack modal, Teams card) says the limit to the platform, which stops typing
    # there, and a submit that still holds more is refused on its field.
    asked = await pim.say(BOB, "activate")
    assert asked.form is not None
    assert [i.max_length for i in asked.form.inputs if i.name == "reason"] == [500]
    form = await pim.click(BOB, ActionId.SUBMIT_ACTIVATION, "", {
        "role": "staging-deploy", "duration": "1h", "reason": "z" * 600})
    assert not form.ok and "600 characters" in form.field_errors["reason"], form
    denial = await pim.click(ALICE, ActionId.SUBMIT_DENY, rid, {"reason": "n" * 501})
    assert not denial.ok and "501 characters" in denial.field_errors["reason"], denial


async def test_a_policy_change_reads_in_pimbots_words(db: Database) -> None:
    pim = await make_pim(db)
    changed = POLICY.replace("    require_justification: true\n",
                             "    require_justification: true\n    require_mfa: true\n", 1)
    await apply_policy(db, parse_policy(changed), pim.clock)
    reply = await pim.say(LEAD, "audit prod-db-admin")
    line = next(line for line in reply.text.splitlines() if "policy.role_changed" in line)
    assert "require_mfa: false → true" in line, line
    assert "'require_mfa'" not in line and "False" not in line and "{" not in line, line
