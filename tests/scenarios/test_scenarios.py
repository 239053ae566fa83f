"""One scenario suite, run on every chat platform through its Driver (see conftest.py).

Each scenario is what people do and what they then see: the same words, buttons and
outcomes on the console and on Slack, so no platform drifts from the others.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pyotp
from scenario_driver import ALICE, BOB, CAROL, KEY, LEAD, Driver, latest

ACTIVATE = "activate prod-db-admin for 1h reason restore backup"


async def request_approval(driver: Driver, text: str = ACTIVATE) -> str:
    """Bob asks; both approvers get a card with Approve and Deny. Returns the request id."""
    answer = await driver.say(BOB, text)
    assert "waiting for approval" in answer, answer
    for approver in (ALICE, CAROL):
        card = latest(driver, approver)
        assert card.title == "Activation approval needed: bob@example.com → prod-db-admin"
        assert card.buttons == ("Approve", "Deny")
    request_id = latest(driver, ALICE).request_id
    assert latest(driver, CAROL).request_id == request_id
    assert all(c.title != latest(driver, ALICE).title for c in driver.cards_for(BOB)), \
        "nobody is asked to approve their own request"
    return request_id


async def test_request_approve_grant_reminder_expiry(driver: Driver) -> None:
    request_id = await request_approval(driver)
    assert driver.provider.actions("grant") == []

    answer = await driver.click(ALICE, "Approve")
    assert f"Approved request {request_id}" in answer
    assert [(c.email, c.role) for c in driver.provider.actions("grant")] == \
        [(BOB, "prod-db-admin")]
    for approver in (ALICE, CAROL):
        card = latest(driver, approver)
        assert card.title == f"Activation request {request_id}: active", card
        assert card.buttons == () and "Approved by alice@example.com" in card.text, \
            "every copy shows who decided, without buttons"
    mine = latest(driver, BOB)
    assert mine.title == "Your activation of prod-db-admin: active"
    assert mine.buttons == ("Extend", "Deactivate")

    await driver.advance(timedelta(minutes=49))
    assert latest(driver, BOB).title == "Your activation of prod-db-admin: active"
    await driver.advance(timedelta(minutes=1))
    reminder = latest(driver, BOB)
    assert reminder.title == "Your prod-db-admin access ends soon"
    assert reminder.buttons == ("Extend", "Deactivate")
    assert driver.provider.actions("revoke") == []

    await driver.advance(timedelta(minutes=10))
    assert [(c.email, c.role) for c in driver.provider.actions("revoke")] == \
        [(BOB, "prod-db-admin")]
    assert (BOB, "prod-db-admin") not in driver.provider.held
    ended = latest(driver, BOB)
    assert ended.title == "Your activation of prod-db-admin: expired", ended
    assert "Access removed at the provider." in ended.text


async def test_cancel_and_deactivate_ask_before_they_act(driver: Driver) -> None:
    """The requester's Cancel request and Deactivate cannot be undone: each asks first (its
    question the same on every platform), and only going ahead acts."""
    request_id = await request_approval(driver)
    question = await driver.asks_first(BOB, "Cancel request")
    assert f"Cancel request {request_id}?" in question, question
    assert "withdrawn and its approvers are told" in question, question
    assert latest(driver, CAROL).buttons == ("Approve", "Deny"), "nothing cancelled yet"
    answer = await driver.click(BOB, "Cancel request")
    assert f"Cancelled request {request_id}" in answer, answer
    assert latest(driver, CAROL).buttons == ()

    await request_approval(driver)
    await driver.click(ALICE, "Approve")
    mine = latest(driver, BOB)
    assert mine.title == "Your activation of prod-db-admin: active", mine
    assert await driver.asks_first(BOB, "Extend") == "", "more time is not asked about"
    question = await driver.asks_first(BOB, "Deactivate")
    assert "Deactivate prod-db-admin now?" in question, question
    assert "removed at the provider" in question, question
    assert driver.provider.actions("revoke") == [], "asking revokes nothing"
    answer = await driver.click(BOB, "Deactivate")
    assert "Deactivated prod-db-admin" in answer, answer
    assert [(c.email, c.role) for c in driver.provider.actions("revoke")] == \
        [(BOB, "prod-db-admin")]


async def test_deny_with_a_reason(driver: Driver) -> None:
    await request_approval(driver)
    asked = await driver.click(CAROL, "Deny")
    assert "reason" in asked.lower()
    assert latest(driver, CAROL).buttons == ("Approve", "Deny"), "nothing decided yet"
    answer = await driver.submit(CAROL, {"reason": "not during the freeze"})
    assert "Denied request" in answer
    assert driver.provider.calls == []
    mine = latest(driver, BOB)
    assert mine.title == "Your activation of prod-db-admin: denied"
    assert "Denied by carol@example.com" in mine.text
    assert "“not during the freeze”" in mine.text, "the denier's words, quoted as such"
    for approver in (ALICE, CAROL):
        assert latest(driver, approver).buttons == ()
        assert "Denied by carol@example.com" in latest(driver, approver).text


async def test_self_approval_is_refused(driver: Driver) -> None:
    answer = await driver.say(ALICE, "activate prod-db-admin for 1h reason rotate keys")
    assert "waiting for approval" in answer
    request_id = latest(driver, ALICE).request_id
    assert latest(driver, CAROL).buttons == ("Approve", "Deny")

    refused = await driver.say(ALICE, f"approve {request_id}")
    assert "your own request" in refused.lower(), refused
    assert driver.provider.calls == []
    assert latest(driver, CAROL).buttons == ("Approve", "Deny"), "still waiting"

    await driver.click(CAROL, "Approve")
    assert [c.email for c in driver.provider.actions("grant")] == [ALICE]


async def test_a_double_click_decides_once(driver: Driver) -> None:
    await request_approval(driver)
    answers = await asyncio.gather(driver.click(ALICE, "Approve"),
                                   driver.click(ALICE, "Approve"))
    text = "\n".join(answers)
    assert text.count("Approved request") == 1, answers
    assert "already" in text, answers
    assert len(driver.provider.actions("grant")) == 1


async def test_two_approvers_at_once_decide_once(driver: Driver) -> None:
    await request_approval(driver)
    answers = await asyncio.gather(driver.click(ALICE, "Approve"),
                                   driver.click(CAROL, "Approve"))
    text = "\n".join(answers)
    assert text.count("Approved request") == 1, answers
    assert "already" in text, answers
    assert len(driver.provider.actions("grant")) == 1
    decided = {latest(driver, a).text.count("Approved by") for a in (ALICE, CAROL)}
    assert decided == {1}, "every copy names the one decision"


async def enrol(driver: Driver, who: str) -> pyotp.TOTP:
    answer = await driver.say(who, "mfa enroll")
    found = KEY.search(answer) or KEY.search(latest(driver, who).text)
    assert found, answer
    totp = pyotp.TOTP(found.group(1))
    confirmed = await driver.say(who, f"mfa confirm {totp.at(driver.clock.now())}")
    assert "confirmed" in confirmed, confirmed
    await driver.advance(timedelta(seconds=30))  # the next code is a fresh time step
    return totp


async def test_mfa_step_up_for_the_requester_and_the_approver(driver: Driver) -> None:
    bob = await enrol(driver, BOB)
    alice = await enrol(driver, ALICE)
    asked = await driver.say(BOB, "activate vault-root for 1h reason unseal")
    assert "authenticator code" in asked.lower(), asked
    code = str(bob.at(driver.clock.now()))
    answer = await driver.submit(BOB, {"code": code})
    assert "waiting for approval" in answer, answer

    asked = await driver.click(ALICE, "Approve")
    assert "authenticator code" in asked.lower(), asked
    valid = {alice.at(driver.clock.now() + timedelta(seconds=s)) for s in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    refused = await driver.submit(ALICE, {"code": wrong})
    assert "code" in refused.lower(), refused
    assert driver.provider.calls == []

    await driver.click(ALICE, "Approve")
    approved = await driver.submit(ALICE, {"code": str(alice.at(driver.clock.now()))})
    assert "Approved request" in approved, approved
    assert [(c.email, c.role) for c in driver.provider.actions("grant")] == [(BOB, "vault-root")]


async def test_an_access_review_keep_and_remove(driver: Driver) -> None:
    """The admin starts a review; carol keeps alice and removes bob, who loses access."""
    await request_approval(driver)
    await driver.click(ALICE, "Approve")
    assert len(driver.provider.actions("grant")) == 1
    answer = await driver.say(LEAD, "review start prod-db-admin for 7d")
    assert "Started access review" in answer and "2 item(s)" in answer, answer
    prompts = [c for c in driver.cards_for(CAROL) if c.title.startswith("Access review")]
    assert {c.title for c in prompts} == {
        f"Access review ad-hoc: keep {who} on prod-db-admin?" for who in (ALICE, BOB)}
    assert all(c.buttons == ("Keep", "Remove") for c in prompts)
    kept = prompts[-1].title.split()[4]
    answer = await driver.click(CAROL, "Keep")
    assert f"Recorded: keep for {kept} on prod-db-admin" in answer, answer
    listing = await driver.say(CAROL, "reviews")
    assert "1 review item(s) wait for your answer" in listing, listing
    assert latest(driver, CAROL).buttons == ("Keep 1", "Remove 1", "Accept recommendations")
    question = await driver.asks_first(CAROL, "Accept recommendations")  # answers many at once
    assert "Accept pimbot's recommendations for 1 item(s)?" in question, question
    assert "loses that access" in question, question
    removed = BOB if kept == ALICE else ALICE
    asked = await driver.click(CAROL, "Remove 1")
    assert "needs a reason" in asked or "Why remove it?" in asked, asked  # text or a form
    answer = await driver.submit(CAROL, {"reason": "left the team"})
    assert f"Recorded: remove for {removed} on prod-db-admin" in answer, answer
    assert "prod-db-admin" not in await driver.say(removed, "roles")
    if removed == BOB:
        assert len(driver.provider.actions("revoke")) == 1, "bob's active grant was revoked"
    told = [c for c in driver.cards_for(removed) if "was removed" in c.title]
    assert told and "left the team" in told[-1].text


async def test_an_approval_rule_approves_in_office_hours_and_asks_a_human_after(
        driver: Driver) -> None:
    """Monday 09:00 UTC is inside the window: approved at once, traced to its rule."""
    answer = await driver.say(BOB, "activate office-hours for 1h")
    assert "approved automatically: inside Mon-Fri 08:00-18:00 UTC" in answer, answer
    assert [(c.email, c.role) for c in driver.provider.actions("grant")] == \
        [(BOB, "office-hours")]
    await driver.say(BOB, "deactivate office-hours")
    await driver.advance(timedelta(hours=10))  # 19:00: outside
    answer = await driver.say(BOB, "activate office-hours for 1h")
    assert "waiting for approval" in answer, answer
    card = latest(driver, ALICE)
    assert card.buttons == ("Approve", "Deny")
    assert "outside Mon-Fri 08:00-18:00 UTC: a human decides" in card.text, card.text


async def test_access_being_granted_offers_deactivate_not_cancel(driver: Driver) -> None:
    """Approved at once (here by a rule; a role without approval alike), the request is an
    activation from the first card: "granting access now…" offers Deactivate (its question
    the same as on the active card), never Cancel request, which is refused once the grant
    has landed."""
    await driver.say(BOB, "activate office-hours for 1h")
    granting = [c for c in driver.cards_for(BOB) if "granting access now" in c.text]
    assert granting, [c.title for c in driver.cards_for(BOB)]
    assert {c.buttons for c in granting} == {("Deactivate",)}, granting
    active = latest(driver, BOB)
    assert active.title == "Your activation of office-hours: active", active
    question = await driver.asks_first(BOB, "Deactivate")
    assert "Deactivate office-hours now?" in question, question
    answer = await driver.click(BOB, "Deactivate")
    assert "Deactivated office-hours" in answer, answer
    assert [(c.email, c.role) for c in driver.provider.actions("revoke")] == \
        [(BOB, "office-hours")]
