"""A colleague with no part in a request (not its requester, an approver of its role, an
admin or an auditor) who knows its id, say from a screenshot, forges every press Teams
carries for it and types every command that takes an id: pimbot changes nothing and tells
them nothing of it: not the requester, the role, the reason or the state."""

from __future__ import annotations

from typing import Any

from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import ALICE, BOB, CAROL, LEAD, Person
from teams_rig import Rig, card_text, running

from pimbot.store.database import Database

DAVE = Person("29:dave-colleague", "dave@example.com", "Dave Colleague")
REASON = "restore backup of the ledger"
PERSON = (BOB.email, "Bob Requester", REASON)
SECRETS = (*PERSON, "staging-deploy")  # the role of the active request, which no press names


def told(answer: dict[str, Any]) -> str:
    """What the invoke's answer shows its reader: a card's text, or a message."""
    if answer.get("type") == "application/vnd.microsoft.card.adaptive":
        return card_text(answer["value"])
    return str(answer.get("value"))


async def pressed(rig: Rig, verb: str, data: dict[str, Any]) -> str:
    """Dave's forged press, in his own chat, on a card id that is not his."""
    return told(await rig.press(DAVE, verb, data, "1:forged-card"))


def assert_nothing_of(text: str, what: str, secrets: tuple[str, ...] = SECRETS) -> None:
    for secret in secrets:
        assert secret not in text, f"{what} told dave {secret!r}: {text}"


async def test_a_forged_refresh_of_an_approval_card_tells_an_outsider_nothing(
        db: Database, fake_teams: FakeBotFramework) -> None:
    """The refresh invoke of an approval card names the request (``{"id", "view"}``); Teams
    sends it only to the deciders ``userIds`` lists, but its data is the client's. Dave, who
    has no part in the request, sends one naming it: he gets no card of it (he had none),
    while the requester and the admin still get its status and the approvers the buttons."""
    fake_teams.members[DAVE.user_id] = DAVE.member
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL, LEAD, DAVE)
        await rig.say(BOB, f"pim activate prod-db-admin for 1h reason {REASON}")
        (request,) = await rig.requests()
        for view in ("approval", "approver_reminder"):
            shown = await pressed(rig, "pimRefresh", {"id": request.id, "view": view})
            assert_nothing_of(shown, f"a refresh of the {view} card")
            assert "no longer current" in shown, shown
        for who in (BOB, LEAD, ALICE):
            answer = await rig.press(who, "pimRefresh", {"id": request.id, "view": "approval"},
                                     "1:their-card")
            assert REASON in card_text(answer["value"]), f"{who.email} has a part in it"
