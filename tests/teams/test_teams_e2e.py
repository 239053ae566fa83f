"""End to end in Teams: bob asks in personal chat, alice approves on the card pimbot sent her
proactively, the grant is made, bob is told; deactivate revokes. Every card is schema-checked
(``Rig.settle``)."""

from __future__ import annotations

from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB, CAROL, CHANNEL, Person
from teams_rig import Rig, buttons, card_text, running

from pimbot.store.database import Database

ACTIVATE = "pim activate prod-db-admin for 1h reason restore backup"


async def ask(rig: Rig) -> str:
    """Bob asks; both approvers get an approval card with Approve and Deny. The request id."""
    told = await rig.say(BOB, ACTIVATE)
    assert any("waiting for approval" in t for t in told), told
    (request,) = await rig.requests()
    for approver in (ALICE, CAROL):
        _, card = rig.latest_card(approver)
        assert set(buttons(card)) == {"Approve", "Deny"}, card
        assert buttons(card)["Approve"] == ("pimApprove", {"id": request.id})
        assert card["refresh"]["userIds"] == [approver.user_id], "kept current for its reader"
        assert "bob@example.com" in card_text(card) and "restore backup" in card_text(card)
    return request.id


def channel_cards(rig: Rig) -> list[dict[str, object]]:
    return [card for (conv, _), activity in rig.fake.activities.items()
            if conv.startswith(CHANNEL) for card in
            [a["content"] for a in activity.get("attachments") or []]]


async def test_activate_approve_grant_told_deactivate_revoke(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        response = await rig.driver.post(rig.driver.team_added(ALICE))
        assert response.status == 201
        await rig.introduce(BOB, ALICE, CAROL)
        request_id = await ask(rig)
        proactive = [c for c in fake_teams.sent(ALICE.chat)]
        assert proactive and "replyToId" not in proactive[-1].body, "sent, not a reply"
        (posted,) = channel_cards(rig)
        assert "prod-db-admin" in card_text(posted)  # type: ignore[arg-type]
        assert rig.provider.calls == []

        card_id, _ = rig.latest_card(ALICE)
        answer = await rig.press(ALICE, "pimApprove", {"id": request_id}, card_id)
        assert answer["statusCode"] == 200
        assert answer["type"] == "application/vnd.microsoft.card.adaptive"
        assert "actions" not in answer["value"], "the pressed card loses its buttons"
        assert f"Approved request {request_id}" in card_text(answer["value"])

        assert [(c.email, c.role) for c in rig.provider.actions("grant")] == \
            [(BOB.email, "prod-db-admin")]
        for approver in (ALICE, CAROL):
            _, card = rig.latest_card(approver)
            assert "actions" not in card, "every copy is updated when decided"
            assert "Approved by alice@example.com" in card_text(card)
        posted, notice = channel_cards(rig)
        assert "Approved by alice@example.com" in card_text(posted)  # type: ignore[arg-type]
        assert "bob@example.com activated prod-db-admin" in card_text(notice)  # type: ignore
        updates = [c for c in fake_teams.calls if c.method == "PUT"]
        assert updates and all(c.authorization.startswith("Bearer ") for c in updates)

        card_id, mine = rig.latest_card(BOB)
        assert "Your activation of prod-db-admin: active" in card_text(mine)
        assert set(buttons(mine)) == {"Extend", "Deactivate"}

        verb, data = buttons(mine)["Deactivate"]
        answer = await rig.press(BOB, verb, data, card_id)
        assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
        assert [(c.email, c.role) for c in rig.provider.actions("revoke")] == \
            [(BOB.email, "prod-db-admin")]
        _, mine = rig.latest_card(BOB)
        assert "deactivated" in card_text(mine)


async def test_deny_asks_a_reason_in_the_card(db: Database,
                                              fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        request_id = await ask(rig)
        card_id, _ = rig.latest_card(CAROL)
        form = await rig.press(CAROL, "pimDeny", {"id": request_id}, card_id)
        assert form["type"] == "application/vnd.microsoft.card.adaptive"
        inputs = [e for e in form["value"]["body"] if e["type"] == "Input.Text"]
        assert [(i["id"], i["isRequired"]) for i in inputs] == [("reason", True)]
        (submit,) = form["value"]["actions"]
        assert (submit["verb"], submit["data"]) == ("pimSubmitDeny", {"id": request_id})
        assert [r.state for r in await rig.requests()] == ["pending_approval"]

        done = await rig.press(CAROL, "pimSubmitDeny",
                               {"id": request_id, "reason": "not during the freeze"}, card_id)
        assert f"Denied request {request_id}" in card_text(done["value"])
        assert [r.state for r in await rig.requests()] == ["denied"]
        assert rig.provider.calls == []
        _, mine = rig.latest_card(BOB)
        assert "Denied by carol@example.com" in card_text(mine)
        assert "Denial reason: “not during the freeze”" in card_text(mine)
        for approver in (ALICE, CAROL):
            assert "actions" not in rig.latest_card(approver)[1]


async def test_a_refused_press_answers_a_message_and_keeps_the_card(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        request_id = await ask(rig)
        card_id, _ = rig.latest_card(ALICE)
        await rig.press(ALICE, "pimApprove", {"id": request_id}, card_id)
        again = await rig.press(CAROL, "pimApprove", {"id": request_id},
                                rig.latest_card(CAROL)[0])
        assert again["type"] == "application/vnd.microsoft.activity.message", again
        assert "already" in again["value"].lower()
        assert len(rig.provider.actions("grant")) == 1, "a second press changes nothing"
        unknown = await rig.press(ALICE, "pimFoo", {"id": request_id}, card_id)
        assert unknown["statusCode"] == 200, "a message the client shows, not an error"
        assert unknown["type"] == "application/vnd.microsoft.activity.message", unknown
        assert unknown["value"].startswith("That button is not one pimbot knows"), unknown
        assert unknown["value"].endswith("try: pim status"), unknown
        assert len(rig.provider.actions("grant")) == 1, "an unknown button changes nothing"


async def test_a_refresh_returns_the_card_as_last_drawn(db: Database,
                                                        fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        request_id = await ask(rig)
        card_id, _ = rig.latest_card(CAROL)
        refreshed = await rig.press(CAROL, "pimRefresh", {}, card_id)
        assert set(buttons(refreshed["value"])) == {"Approve", "Deny"}
        await rig.press(ALICE, "pimApprove", {"id": request_id}, rig.latest_card(ALICE)[0])
        refreshed = await rig.press(CAROL, "pimRefresh", {}, card_id)
        assert "actions" not in refreshed["value"]
        assert "Approved by alice@example.com" in card_text(refreshed["value"])


async def test_an_approver_who_never_installed_pimbot_is_reported(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE)  # carol never installed pimbot
        await rig.say(BOB, ACTIVATE)
        told = " ".join(card_text(c) for c in fake_teams.cards_in(BOB.chat))
        assert "pimbot could not reach carol@example.com" in told, told
        assert rig.latest_card(ALICE)


async def test_references_survive_a_restart(db: Database,
                                            fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(ALICE, CAROL)
    async with running(db, fake_teams, POLICY) as rig:  # a new process: only the database
        await rig.introduce(BOB)
        await ask(rig)


async def test_an_action_submit_from_an_old_client_is_a_press(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        request_id = await ask(rig)
        card_id, card = rig.latest_card(ALICE)
        fallback = card["actions"][0]["fallback"]
        assert fallback["type"] == "Action.Submit"
        response = await rig.driver.post(rig.driver.submit(ALICE, fallback["data"], card_id))
        assert response.status == 201
        await rig.settle()
        assert len(rig.provider.actions("grant")) == 1
        told = [t for t in fake_teams.texts_in(ALICE.chat)]
        assert any(f"Approved request {request_id}" in t for t in told), told


def _unused(who: Person) -> None:  # keeps the import of Person for type hints in helpers
    del who


async def test_extend_from_the_card_asks_the_approvers_again(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        request_id = await ask(rig)
        await rig.press(ALICE, "pimApprove", {"id": request_id}, rig.latest_card(ALICE)[0])
        card_id, mine = rig.latest_card(BOB)
        verb, data = buttons(mine)["Extend"]
        answer = await rig.press(BOB, verb, data, card_id)
        assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
        assert "extension" in card_text(answer["value"]).lower()
        assert set(buttons(answer["value"])) == {"Cancel request"}
        _, asked = rig.latest_card(CAROL)
        assert card_text(asked).startswith("Extension approval needed"), card_text(asked)
        assert set(buttons(asked)) == {"Approve", "Deny"}
