"""An extension request waiting for approval is withdrawn when its activation ends, whatever
ended it (the requester's deactivate, the expiry, an admin's unassign), and a late approve
says the activation has ended instead of "approved (extension applied)"."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.ui.cards import ActionId

from .harness import Pim, make_pim, request_id_of

BOB, ALICE, LEAD = "bob@example.com", "alice@example.com", "sec-lead@example.com"


async def _active_with_waiting_extension(pim: Pim) -> tuple[str, str]:
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason INC-1"))
    assert (await pim.click(ALICE, ActionId.APPROVE, rid)).ok
    ext = await pim.say(BOB, "extend prod-db-admin for 1h")
    assert ext.ok and "sent for approval" in ext.text, ext.text
    assert ext.subject in (await pim.say(ALICE, "pending")).text
    return rid, request_id_of(ext)


async def _assert_withdrawn(db: Database, pim: Pim, rid: str, ext_id: str) -> None:
    async with db.read() as session:
        ext = await session.get(RequestRow, ext_id)
        assert ext is not None and ext.state == "cancelled"
        events = (await session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == "extension.withdrawn"))).all()
    assert [e.detail["request"] for e in events] == [ext_id]
    assert ext_id not in (await pim.say(BOB, "status")).text
    assert ext_id not in (await pim.say(ALICE, "pending")).text
    # Alice's card for the extension no longer offers Approve / Deny, and says why.
    copies = [d.latest for d in pim.chat.to(f"user:{ALICE}")
              if any(b.value == ext_id for b in d.card.actions)]
    assert copies and all(not card.actions for card in copies)
    assert all("Withdrawn" in card.context or "Withdrawn" in card.text
               or any("Withdrawn" in str(f.value) for f in card.fields) for card in copies)
    late = await pim.say(ALICE, f"approve {ext_id}")
    assert not late.ok
    assert f"activation it extends ({rid})" in late.text and "no access left" in late.text
    assert "extension applied" not in late.text


async def test_deactivate_withdraws_the_waiting_extension(db: Database) -> None:
    pim = await make_pim(db)
    rid, ext_id = await _active_with_waiting_extension(pim)
    assert (await pim.say(BOB, "deactivate prod-db-admin")).ok
    await _assert_withdrawn(db, pim, rid, ext_id)


async def test_expiry_withdraws_the_waiting_extension(db: Database) -> None:
    pim = await make_pim(db)
    rid, ext_id = await _active_with_waiting_extension(pim)
    await pim.advance(timedelta(hours=1))
    await _assert_withdrawn(db, pim, rid, ext_id)


async def test_unassign_by_an_admin_withdraws_the_waiting_extension(db: Database) -> None:
    pim = await make_pim(db)
    rid, ext_id = await _active_with_waiting_extension(pim)
    assert (await pim.say(LEAD, "unassign bob@example.com prod-db-admin")).ok
    await _assert_withdrawn(db, pim, rid, ext_id)


async def test_an_approved_extension_that_could_not_apply_never_says_applied(
        db: Database) -> None:
    """An extension left waiting on ended access (as versions before the withdrawal left
    them in the database) is approved, but nothing is extended: every word says so."""
    pim = await make_pim(db)
    rid, ext_id = await _active_with_waiting_extension(pim)
    async with db.transaction() as session:  # ended the way an older pimbot ended it
        parent = await session.get(RequestRow, rid)
        assert parent is not None
        parent.state = "expired"
    reply = await pim.say(ALICE, f"approve {ext_id} comment looks fine")
    assert not reply.ok and "nothing was extended" in reply.text, reply.text
    async with db.read() as session:
        ext = await session.get(RequestRow, ext_id)
    assert ext is not None and ext.state == "approved" and ext.failure
    again = await pim.say(ALICE, f"approve {ext_id}")
    assert "extension applied" not in again.text and "not applied" in again.text, again.text
    cards = [d.latest for d in pim.chat.to(f"user:{ALICE}")
             if any(b.value == ext_id for b in d.card.actions)]
    assert cards and all("extension applied" not in c.text for c in cards), [c.text for c in cards]
    assert any("not applied" in c.text for c in cards), [c.text for c in cards]
