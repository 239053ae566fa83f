"""The hint a person is shown, typed as it stands, is accepted: the right command, a role that
exists and that they hold, and every clause the role needs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pimbot.commands import parse
from pimbot.store.database import Database
from pimbot.workflow.actor import Actor

from .harness import make_pim

BOB, LEAD = "bob@example.com", "sec-lead@example.com"

POLICY_WITH_MFA = """
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com]
providers:
  demo: {type: noop}
roles:
  audit-read:
    provider: demo
    max_duration: 30m
    require_mfa: true
    require_ticket: "^CHG-[0-9]+$"
  staging-deploy:
    provider: demo
assignments:
  - {user: bob@example.com, role: audit-read, type: eligible}
  - {user: bob@example.com, role: staging-deploy, type: eligible}
"""


async def test_bare_activate_hints_a_whole_command_for_a_role_the_person_holds(
        db: Database) -> None:
    pim = await make_pim(db)
    shown = await pim.say(BOB, "activate")
    assert not shown.ok and shown.hint, shown
    assert shown.hint.startswith("activate billing-read ")  # Bob's first eligible role
    typed = await pim.say(BOB, shown.hint)
    assert typed.ok, typed.said("")  # its ticket is there: it went for approval
    assert typed.subject


async def test_a_missing_part_is_hinted_with_the_rest_the_role_needs(db: Database) -> None:
    pim = await make_pim(db, POLICY_WITH_MFA)
    totp = await pim.enrol(BOB)
    shown = await pim.say(BOB, "activate audit-read reason look at the logs")
    assert not shown.ok
    command = parse(shown.hint)
    assert command == parse("activate audit-read for 30m ticket CHG-42 code 123456 "
                             "reason look at the logs")  # what was typed is kept
    typed = await pim.say(BOB, shown.hint.replace("123456", pim.code(totp)))
    assert typed.ok, typed.said("")


async def test_a_time_in_the_past_hints_one_that_is_not(db: Database) -> None:
    pim = await make_pim(db)
    shown = await pim.say(BOB, "activate staging-deploy at 2020-01-01T09:00Z for 1h")
    assert "in the past" in shown.text
    typed = await pim.say(BOB, shown.hint)
    assert typed.ok, typed.said("")


@pytest.mark.parametrize(("who", "typed", "hint"), [
    (BOB, "activate prod-db-admn for 1h reason x", "activate prod-db-admin for 1h reason …"),
    (BOB, "breakglass prod-db-admn reason x",
     "breakglass prod-db-admin for 1h code 123456 reason …"),
    (BOB, "deactivate prod-db-admn", "deactivate prod-db-admin"),
    (BOB, "extend prod-db-admn for 1h", "extend prod-db-admin"),
    (LEAD, "whois prod-db-admn", "whois prod-db-admin"),
    (LEAD, "review start staging-deploy prod-db-admn for 7d",
     "review start staging-deploy prod-db-admin"),
    (LEAD, "assign bob@example.com prod-db-admn active for 1h",
     "assign bob@example.com prod-db-admin active"),
    (LEAD, "unassign bob@example.com prod-db-admn", "unassign bob@example.com prod-db-admin"),
    (BOB, "activate nothing-like-it for 1h reason x", "roles"),
    (LEAD, "whois nothing-like-it", "roles"),
], ids=lambda v: v if " " in v else None)
async def test_a_misspelt_role_hints_the_command_that_was_typed(
        db: Database, who: str, typed: str, hint: str) -> None:
    pim = await make_pim(db)
    reply = await pim.say(who, typed)
    assert not reply.ok
    assert reply.hint == hint, reply


@pytest.mark.parametrize(("typed", "hint"), [
    ("approve abc234", "pending"),
    ("review keep abc234", "reviews"),
    ("mfa enroll", "mfa enroll"),  # typed in a channel: the text says where to send it
])
async def test_hints_after_an_unknown_id_or_the_wrong_place_are_bare_commands(
        db: Database, typed: str, hint: str) -> None:
    pim = await make_pim(db)
    reply = await pim.core.handle_text(Actor(BOB, "slack", in_direct_message=False), typed)
    assert not reply.ok
    assert reply.hint == hint, reply
    parse(reply.hint)


async def test_too_few_approvers_does_not_hint_a_command_the_requester_may_not_use(
        db: Database) -> None:
    policy = """
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  two-man:
    provider: demo
    approval: {required: true, approvers: [bob@example.com, sec-lead@example.com],
               min_approvals: 2}
assignments:
  - {user: bob@example.com, role: two-man, type: eligible}
"""
    pim = await make_pim(db, policy)
    reply = await pim.say(BOB, "activate two-man for 1h reason x")
    assert "needs 2 approvals" in reply.text
    assert not reply.hint.startswith("whois"), "whois is refused to a requester"


async def test_an_extension_past_the_maximum_hints_what_is_left(db: Database) -> None:
    pim = await make_pim(db)
    assert (await pim.say(BOB, "activate staging-deploy for 7h")).ok
    await pim.advance(timedelta(seconds=1))
    reply = await pim.say(BOB, "extend staging-deploy for 2h")
    assert not reply.ok and reply.hint == "extend staging-deploy for 1h", reply
    assert (await pim.say(BOB, reply.hint)).ok


@pytest.mark.parametrize(("typed", "hint"), [
    # minutes for a larger number, as the newcomer meant ("for 30": not the sample 1h)
    ("activate staging-deploy for 30 reason deploy",
     "activate staging-deploy for 30m reason deploy"),
    ("activate prod-db-admin for 90 reason x", "activate prod-db-admin for 1h30m reason x"),
    # hours for a small one; the role's maximum when that is over it, with what it needs
    ("activate prod-db-admin for 2 reason x", "activate prod-db-admin for 2h reason x"),
    ("activate billing-read for 8 ticket INC-1 reason x",
     "activate billing-read for 2h ticket INC-1 reason x"),
    ("breakglass prod-db-admin for 90 reason outage",
     "breakglass prod-db-admin for 1h code 123456 reason outage"),
    ("extend staging-deploy for 45", "extend staging-deploy for 45m"),
])
async def test_a_duration_without_a_unit_hints_the_unit_meant_within_the_maximum(
        db: Database, typed: str, hint: str) -> None:
    pim = await make_pim(db)
    reply = await pim.say(BOB, typed)
    number = typed.split(" for ")[1].split()[0]
    assert not reply.ok and reply.text.startswith(f"'{number}' has no unit;"), reply.text
    assert reply.hint == hint, reply.hint
    parse(hint)
    assert pim.provider.calls == []


async def test_a_breakglass_without_its_code_is_hinted_with_its_reason(db: Database) -> None:
    pim = await make_pim(db)
    totp = await pim.enrol(BOB)
    reply = await pim.say(BOB, 'breakglass prod-db-admin for 30m reason db "is" down')
    assert not reply.ok and "authenticator code" in reply.text, reply
    assert reply.hint == 'breakglass prod-db-admin for 30m code 123456 reason db "is" down'
    typed = await pim.say(BOB, reply.hint.replace("123456", pim.code(totp)))
    assert typed.ok, typed.said("")
