"""Approval cards drawn per reader (Adaptive Cards ``refresh.userIds``): the card as sent
shows the status only; the people the core says may decide are listed in its refresh, and
the automatic refresh invoke answers each of them with Approve / Deny, anyone else with the
status; once decided, every copy shows the outcome without buttons. Every card is checked
against the schema (``Rig.settle``, ``Rig.seen_by``, ``Rig.press``)."""

from __future__ import annotations

from typing import Any

from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB, CAROL, CHANNEL, LEAD, Person
from teams_rig import Rig, buttons, card_text, running

from pimbot.store.database import Database

ACTIVATE = "pim activate prod-db-admin for 1h reason restore backup"
TWO_OF_THEM = POLICY.replace("min_approvals: 1, timeout: 24h}\n    notify",
                             "min_approvals: 2, timeout: 24h}\n    notify", 1)
assert TWO_OF_THEM != POLICY


def channel_card(rig: Rig) -> tuple[str, str, dict[str, Any]]:
    """(conversation, activity id, card) of the approval card posted to the channel: the one
    with the request's Approvals, pending or decided (the channel also gets other cards about
    the request, such as "pimbot could not reach carol…", in no promised order)."""
    found = [(conv, aid, a["content"]) for (conv, aid), activity in rig.fake.activities.items()
             if conv.startswith(CHANNEL) for a in activity.get("attachments") or []
             if "\nApprovals: " in card_text(a["content"])]
    assert len(found) == 1, f"not one approval card in the channel: {found}"
    return found[0]


async def in_channel(rig: Rig, who: Person) -> dict[str, Any]:
    conversation, activity, card = channel_card(rig)
    return await rig.seen_by(who, activity, card, conversation)


async def refresh_as(rig: Rig, who: Person, conversation: str, activity: str,
                     card: dict[str, Any]) -> dict[str, Any]:
    """Someone not in ``userIds`` sends the refresh invoke anyway (a forged one, or a client
    that refreshes for everyone): they get what pimbot draws for them."""
    answer = await rig.press(who, "pimRefresh", card["refresh"]["action"]["data"], activity,
                             conversation)
    assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
    return dict(answer["value"])


async def test_the_channel_card_shows_the_buttons_to_the_deciders_only(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        assert (await rig.driver.post(rig.driver.team_added(ALICE))).status == 201
        await rig.introduce(BOB, ALICE, CAROL, LEAD)
        await rig.say(BOB, ACTIVATE)
        (request,) = await rig.requests()
        conversation, activity, sent = channel_card(rig)
        assert "actions" not in sent, "as sent, everyone sees the status only"
        assert "approval needed" in card_text(sent)
        assert sent["refresh"]["userIds"] == [ALICE.user_id, CAROL.user_id], \
            "the approvers are listed; the requester and the others are not"
        assert sent["refresh"]["action"]["data"] == {"id": request.id, "view": "approval"}
        assert await rig.core.deciders(request.id) == (ALICE.email, CAROL.email)

        for approver in (ALICE, CAROL):
            mine = await in_channel(rig, approver)
            assert set(buttons(mine)) == {"Approve", "Deny"}, card_text(mine)
            assert mine["refresh"]["userIds"] == [approver.user_id]
        for other in (BOB, LEAD):
            assert await in_channel(rig, other) == sent, "not listed: the card as sent"
            theirs = await refresh_as(rig, other, conversation, activity, sent)
            assert "actions" not in theirs, f"{other.email} may not decide: the status"
            assert "approval needed" in card_text(theirs)

        answer = await rig.press(ALICE, "pimApprove", {"id": request.id}, activity, conversation)
        assert f"Approved request {request.id}" in card_text(answer["value"])
        assert [(c.email, c.role) for c in rig.provider.actions("grant")] == \
            [(BOB.email, "prod-db-admin")]
        _, _, decided = channel_card(rig)
        assert "actions" not in decided and "refresh" not in decided, \
            "decided: every reader sees the outcome, with no buttons"
        assert "Approved by alice@example.com" in card_text(decided)
        for approver in (ALICE, CAROL):
            _, copy = rig.latest_card(approver)
            assert "actions" not in copy and "refresh" not in copy
            assert "Approved by alice@example.com" in card_text(copy)
        assert await rig.core.deciders(request.id) == (), "decided: nobody may decide it"
        late = await refresh_as(rig, CAROL, conversation, activity, sent)
        assert "actions" not in late, "an old refresh after the decision: no buttons"


async def test_a_requester_who_approves_for_the_role_is_not_listed_for_their_own(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        assert (await rig.driver.post(rig.driver.team_added(ALICE))).status == 201
        await rig.introduce(BOB, ALICE, CAROL)
        await rig.say(ALICE, ACTIVATE)  # alice is eligible, and an approver of the role
        conversation, activity, sent = channel_card(rig)
        assert sent["refresh"]["userIds"] == [CAROL.user_id]
        theirs = await refresh_as(rig, ALICE, conversation, activity, sent)
        assert "actions" not in theirs, "the core says she may not decide her own request"


async def test_someone_who_answered_is_no_longer_listed(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, TWO_OF_THEM) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        await rig.say(BOB, ACTIVATE)
        (request,) = await rig.requests()
        card_id, _ = await rig.latest_seen(ALICE)
        await rig.press(ALICE, "pimApprove", {"id": request.id}, card_id)
        assert [r.state for r in await rig.requests()] == ["pending_approval"]
        _, alices = rig.latest_card(ALICE)
        assert "refresh" not in alices, "alice has answered: her copy is her status"
        assert "Approvals: 1 of 2" in card_text(alices)
        carol_id, carols = rig.latest_card(CAROL)
        assert carols["refresh"]["userIds"] == [CAROL.user_id], "carol still may decide"
        assert set(buttons(await rig.seen_by(CAROL, carol_id, carols))) == {"Approve", "Deny"}
        again = await rig.press(ALICE, "pimRefresh", {"id": request.id, "view": "approval"},
                                card_id)
        assert "actions" not in again["value"]


async def test_an_approver_without_a_teams_account_is_not_listed_and_is_reported(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        assert (await rig.driver.post(rig.driver.team_added(ALICE))).status == 201
        await rig.introduce(BOB, ALICE)  # carol never installed pimbot: known by email only
        await rig.say(BOB, ACTIVATE)
        _, _, sent = channel_card(rig)
        assert sent["refresh"]["userIds"] == [ALICE.user_id]
        told = " ".join(card_text(c) for c in rig.fake.cards_in(BOB.chat))
        assert "pimbot could not reach carol@example.com" in told, told
