"""A hint that names a request keeps the request id the person typed: the mistake was
elsewhere on the line, and another of their requests would be the wrong one to act on."""

from __future__ import annotations

from pimbot.store.database import Database

from .harness import make_pim, request_id_of

BOB, ALICE = "bob@example.com", "alice@example.com"


async def test_a_typed_request_id_stays_in_the_hint(db: Database) -> None:
    pim = await make_pim(db)
    first = request_id_of(await pim.say(BOB, "activate two-man for 1h reason restore"))
    second = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason INC-7"))

    typo = await pim.say(BOB, f"cancel {second} now")
    assert not typo.ok
    assert typo.hint == f"cancel {second}", typo.hint  # not bob's other request, {first}

    # Without an id, the hint still names the person's own request.
    bare = await pim.say(BOB, "cancel")
    assert bare.hint in {f"cancel {first}", f"cancel {second}"}, bare.hint

    # An approver's typo keeps the request they named, not the oldest one waiting for them.
    deny = await pim.say(ALICE, f"deny {second} because")
    assert not deny.ok
    assert second in (deny.hint or deny.text), (deny.hint, deny.text)
    assert first not in (deny.hint or "") + deny.text
