"""A colleague with no part in a request (not its requester, an approver of its role, an
admin or an auditor) who knows its id, say from a screenshot, forges every press Teams
carries for it and types every command that takes an id: pimbot changes nothing and tells
them nothing of it: not the requester, the role, the reason or the state."""

from __future__ import annotations

from typing import Any

from fake_connector import FakeBotFramework
from policies import POLICY
from sqlalchemy import select
from teams_driver import ALICE, BOB, CAROL, LEAD, Person
from teams_rig import Rig, card_text, running

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, ReviewItemRow

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
        async with db.read() as session:
            refused = (await session.scalars(select(AuditEventRow).where(
                AuditEventRow.action == "card.refused"))).all()
        assert [(e.actor, e.detail["request"], e.detail["reason"]) for e in refused] == \
            [(DAVE.email, request.id, "not_party")] * 2, "each forged refresh is audited"
        for who in (BOB, LEAD, ALICE):
            answer = await rig.press(who, "pimRefresh", {"id": request.id, "view": "approval"},
                                     "1:their-card")
            assert REASON in card_text(answer["value"]), f"{who.email} has a part in it"


async def test_forged_presses_and_commands_naming_another_request_tell_nothing_of_it(
        db: Database, fake_teams: FakeBotFramework) -> None:
    fake_teams.members[DAVE.user_id] = DAVE.member
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL, LEAD, DAVE)
        await rig.say(BOB, f"pim activate prod-db-admin for 1h reason {REASON}")
        await rig.say(BOB, f"pim activate staging-deploy for 1h reason {REASON}")
        await rig.say(LEAD, "pim review start prod-db-admin")
        by_role = {r.role: r for r in await rig.requests()}
        waiting, active = by_role["prod-db-admin"].id, by_role["staging-deploy"].id
        assert by_role["staging-deploy"].state == "active"
        async with db.read() as session:
            items = [i.id for i in (await session.scalars(select(ReviewItemRow))).all()]
        assert items, "the review opened items"

        for view in ("approval", "approver_reminder"):
            shown = await pressed(rig, "pimRefresh", {"id": waiting, "view": view})
            assert_nothing_of(shown, f"a refresh of the {view} card")
        for verb in ("pimApprove", "pimDeny", "pimCancel"):
            assert_nothing_of(await pressed(rig, verb, {"id": waiting}), verb)
        assert_nothing_of(await pressed(rig, "pimSubmitApprove",
                                        {"id": waiting, "code": "123456"}), "pimSubmitApprove")
        assert_nothing_of(await pressed(rig, "pimSubmitDeny",
                                        {"id": waiting, "reason": "no"}), "pimSubmitDeny")
        for verb in ("pimDeactivate", "pimExtend"):
            assert_nothing_of(await pressed(rig, verb, {"id": active}), verb)
        assert_nothing_of(await pressed(rig, "pimSubmitExtend",
                                        {"id": active, "duration": "30m"}), "pimSubmitExtend")
        for item in items:
            for verb in ("pimReviewKeep", "pimReviewRemove"):
                answer = await rig.press(DAVE, verb, {"id": item}, "1:forged-card")
                assert_nothing_of(told(answer), verb)
                assert "Input." not in str(answer), f"{verb} gave dave the removal form"
            assert_nothing_of(await pressed(rig, "pimSubmitReviewRemove",
                                            {"id": item, "reason": "gone"}), "review remove")
        for typed in (f"approve {waiting}", f"deny {waiting} reason no", f"cancel {waiting}",
                      f"approve {waiting} code 123456", "extend staging-deploy for 30m",
                      "deactivate staging-deploy", "whois staging-deploy", "pending",
                      "status", "roles", "reviews", f"audit {BOB.email}",
                      *(f"review keep {item}" for item in items)):
            # (a command naming a role is answered about that role, as typed)
            assert_nothing_of(" ".join(await rig.say(DAVE, f"pim {typed}")), typed, PERSON)

        after = {r.id: (r.state, r.votes_count) for r in await rig.requests()}
        assert after[waiting] == ("pending_approval", 0) and after[active][0] == "active"
        async with db.read() as session:
            answered = (await session.scalars(select(ReviewItemRow.decision))).all()
        assert set(answered) == {None}, "no review item was answered"
