"""The first card of a self-service activation (a role without approval).

It says "Approved; granting access now…": the request is an activation from that moment, so
its one button is Deactivate (as in Entra PIM), never Cancel request. A Cancel request press
there was refused as soon as the grant had landed ("only waiting requests can be
cancelled"), which is what a person pressing it a moment later got. Deactivate does the
right thing whether the grant has landed yet or not.
"""

from __future__ import annotations

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from pimbot.ui.cards import ActionId, Card
from pimbot.workflow.actor import Actor

from .harness import make_pim, request_id_of

BOB = "bob@example.com"


def buttons(card: Card | None) -> list[tuple[str, ActionId]]:
    assert card is not None
    return [(b.label, b.action) for b in card.actions]


async def test_the_granting_card_offers_deactivate_and_it_ends_the_granted_access(
        db: Database) -> None:
    pim = await make_pim(db)
    first = await pim.core.handle_text(Actor(BOB), "activate staging-deploy for 1h")
    assert first.card is not None and first.card.text == "Approved; granting access now…"
    assert buttons(first.card) == [("Deactivate", ActionId.DEACTIVATE)]
    assert first.card.actions[0].confirm is not None
    assert first.card.actions[0].confirm.title == "Deactivate staging-deploy now?"
    await pim.core.drain()  # the grant lands while the person reads the card
    assert [c.role for c in pim.provider.actions("grant")] == ["staging-deploy"]

    [(_, action)] = buttons(first.card)
    pressed = await pim.click(BOB, action, first.card.actions[0].value)
    assert pressed.ok, pressed.text
    assert pressed.text == "Deactivated staging-deploy; removing access at the provider."
    assert [c.role for c in pim.provider.actions("revoke")] == ["staging-deploy"]
    assert (BOB, "staging-deploy") not in pim.provider.held


async def test_deactivate_pressed_before_the_grant_lands_leaves_no_access(
        db: Database) -> None:
    pim = await make_pim(db)
    first = await pim.core.handle_text(Actor(BOB), "activate staging-deploy for 1h")
    rid = request_id_of(first)
    [(_, action)] = buttons(first.card)
    pressed = await pim.click(BOB, action, rid)  # before any job ran
    assert pressed.ok, pressed.text
    assert (BOB, "staging-deploy") not in pim.provider.held
    async with db.read() as session:
        state = (await session.execute(
            select(RequestRow.state).where(RequestRow.id == rid))).scalar_one()
    assert state == "cancelled"


async def test_a_request_waiting_for_its_start_can_still_be_cancelled(db: Database) -> None:
    pim = await make_pim(db)
    later = await pim.say(BOB, "activate staging-deploy for 1h at +2h")
    assert later.card is not None
    assert later.card.text == "Approved; access will be granted at the start time."
    assert buttons(later.card) == [("Cancel request", ActionId.CANCEL)]
    pressed = await pim.click(BOB, ActionId.CANCEL, request_id_of(later))
    assert pressed.ok and pressed.text == f"Cancelled request {request_id_of(later)}."
