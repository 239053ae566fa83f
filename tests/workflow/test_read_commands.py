"""``pending`` and ``audit`` answer from the database's narrow reads: what each person may
see, capped, newest (or oldest) first, and nothing that merely looks like a match."""

from __future__ import annotations

from datetime import timedelta

from pimbot.store.audit_log import append_event
from pimbot.store.audit_search import search_events
from pimbot.store.database import Database
from pimbot.workflow.usecases.queries import AUDIT_SHOWN, PENDING_SHOWN

from .harness import make_pim, request_id_of

BOB, ALICE, CAROL, LEAD, AUDITOR = ("bob@example.com", "alice@example.com",
                                    "carol@example.com", "sec-lead@example.com",
                                    "audit@example.com")
DAVE = "dave@example.com"  # named by no policy event


async def test_pending_lists_only_what_the_approver_may_still_decide(db: Database) -> None:
    pim = await make_pim(db)
    mine = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason fix"))
    other = request_id_of(await pim.say(BOB, "activate two-man for 1h reason audit"))
    billing = request_id_of(await pim.say(BOB, "activate billing-read for 1h ticket INC-1 "
                                               "reason x"))
    alice = await pim.say(ALICE, "pending")
    assert mine in alice.text and other in alice.text
    assert billing not in alice.text, "billing-read is approved by the security lead only"
    lead = await pim.say(LEAD, "pending")
    assert billing in lead.text and other in lead.text and mine not in lead.text

    await pim.say(ALICE, f"approve {other}")  # two-man needs a second approval
    alice = await pim.say(ALICE, "pending")
    assert other not in alice.text, "a request one has voted on waits for others"
    assert mine in alice.text and alice.card is not None, "one request left: its card"
    assert other in (await pim.say(CAROL, "pending")).text
    assert "Nothing is waiting" in (await pim.say(BOB, "pending")).text
    hers = request_id_of(await pim.say(ALICE, "activate prod-db-admin for 1h reason own"))
    assert hers not in (await pim.say(ALICE, "pending")).text, "never one's own request"
    assert hers in (await pim.say(CAROL, "pending")).text


async def test_pending_shows_the_oldest_and_counts_the_rest(db: Database) -> None:
    people = [f"p{i}@example.com" for i in range(PENDING_SHOWN + 3)]
    assignments = "".join(f"  - {{user: {p}, role: prod-db-admin, type: eligible}}\n"
                          for p in people)
    pim = await make_pim(db, _policy_with(assignments))
    ids = []
    for person in people:
        ids.append(request_id_of(await pim.say(person, "activate prod-db-admin for 1h "
                                                       "reason batch")))
        await pim.advance(timedelta(seconds=1))
    reply = await pim.say(ALICE, "pending")
    assert reply.text.startswith(f"{len(people)} request(s) waiting for you:")
    assert all(rid in reply.text for rid in ids[:PENDING_SHOWN])
    assert not any(rid in reply.text for rid in ids[PENDING_SHOWN:])
    assert "… and 3 more" in reply.text


async def test_audit_finds_a_person_wherever_an_event_names_them(db: Database) -> None:
    pim = await make_pim(db)
    now = pim.clock.now()
    async with db.transaction() as session:
        for actor, subject, detail in [
            (DAVE, "r1", {}),  # the actor
            ("policy", DAVE, {}),  # the subject
            ("scheduler", "r2", {"user": DAVE, "role": "two-man"}),  # the detail's user
            ("scheduler", "r3", {"user": CAROL, "role": "two-man"}),  # someone else
            ("policy", "prod-db-admin", {"spec": {"note": DAVE}}),  # nested: not naming
        ]:
            await append_event(db, session, at=now, actor=actor, action="bench.event",
                               subject=subject, detail=detail)
    reply = await pim.say(AUDITOR, f"audit {DAVE}")
    for subject in ("r1", DAVE, "r2"):
        assert f"bench.event {subject} " in reply.text
    assert "bench.event r3" not in reply.text and "prod-db-admin" not in reply.text
    assert "bench.event r3" in (await pim.say(AUDITOR, "audit two-man")).text


async def test_audit_since_and_paging_back(db: Database) -> None:
    pim = await make_pim(db)
    start = pim.clock.now()
    async with db.transaction() as session:
        for hour in range(AUDIT_SHOWN + 10):
            await append_event(db, session, at=start + timedelta(hours=hour), actor=DAVE,
                               action="bench.event", subject=f"h{hour}")
    since = start + timedelta(hours=30)
    recent = await search_events(db, subject=DAVE, since=since)
    assert [e.subject for e in recent] == [f"h{h}" for h in range(AUDIT_SHOWN + 9, 29, -1)]
    first = await search_events(db, subject=DAVE)
    assert len(first) == AUDIT_SHOWN and first[0].subject == f"h{AUDIT_SHOWN + 9}"
    older = await search_events(db, subject=DAVE, before=first[-1].seq)
    assert [e.subject for e in older] == [f"h{h}" for h in range(9, -1, -1)]
    assert await search_events(db, subject=DAVE, since=start + timedelta(days=9)) == []
    everything = await search_events(db, limit=5)
    assert [e.seq for e in everything] == sorted((e.seq for e in everything), reverse=True)


def _policy_with(extra_assignments: str) -> str:
    from .harness import POLICY

    return POLICY.rstrip("\n") + "\n" + extra_assignments
