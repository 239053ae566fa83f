"""What people type, on every platform: a hint carries the reason already typed (quoted so it
reads back the same), a code inside a reason reaches no one, and a bidirectional trick is
gone from what approvers see."""

from __future__ import annotations

from scenario_driver import ALICE, BOB, CAROL, Driver, latest


async def test_a_hint_carries_the_reason_typed_with_its_quotes(driver: Driver) -> None:
    answer = await driver.say(BOB, 'activate prod-db-admin for 30 reason restore "the" backup')
    assert "'30' has no unit" in answer, answer
    assert 'activate prod-db-admin for 30m reason restore "the" backup' in answer, answer
    assert driver.cards_for(ALICE) == []


async def test_a_code_inside_a_reason_reaches_no_approver(driver: Driver) -> None:
    answer = await driver.say(BOB, "activate prod-db-admin for 1h reason restore code 482913 "
                                   "the backup")
    assert "authenticator code" in answer and "Nothing was changed" in answer, answer
    assert "482913" not in answer
    assert "activate prod-db-admin for 1h reason restore the backup" in answer, answer
    assert driver.cards_for(ALICE) == [] and driver.cards_for(CAROL) == []


async def test_a_bidi_trick_is_not_on_the_approvers_card(driver: Driver) -> None:
    answer = await driver.say(BOB, "activate prod-db-admin for 1h reason restore "
                                   "\u202epukcab\u2066 the\u200b backup")
    assert "waiting for approval" in answer, answer
    card = latest(driver, ALICE)
    assert "restore pukcab the backup" in card.text, card.text
    assert not any(ch in card.text for ch in "\u202e\u2066\u200b")
