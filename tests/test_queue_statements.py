"""The queue's statements are built once (``scheduling/job_statements.py``): however many
jobs are enqueued, claimed, failed, deferred, rescheduled, discarded and completed, the
statements run are the same few objects, and the rules hold for each job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from pimbot.scheduling.queue import (
    JobQueue,
    NewJob,
    discard,
    enqueue,
    enqueue_again,
    enqueue_many,
    reschedule,
)
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock

ROUNDS = 4


async def _round(db: Database, queue: JobQueue, clock: FakeClock, n: int) -> None:
    now = clock.now()
    async with db.transaction() as session:
        assert await enqueue(session, "notify", {"n": n}, now, dedupe_key=f"one:{n}")
        assert await enqueue_many(session, [NewJob("notify", {"n": n}, now),
                                            NewJob("grant", {"n": n}, now, f"grant:{n}", 6, 1)])
        assert await enqueue_again(session, [NewJob("refresh", {"n": n}, now, f"redraw:{n}")])
        assert await enqueue_many(session, [NewJob("later", {"n": n}, now + timedelta(hours=1),
                                                   f"later:{n}")])
        assert not await enqueue(session, "notify", {"n": n}, now, dedupe_key=f"one:{n}")
        assert await reschedule(session, f"later:{n}", now + timedelta(hours=2))
        assert await discard(session, [f"later:{n}"], now) == 1
    claimed = await queue.claim(limit=10, besides=frozenset({"refresh"}))
    assert sorted(job.kind for job in claimed) == ["grant", "notify", "notify"]
    failing, deferred, *done = claimed
    assert await queue.fail(failing, "boom")
    assert await queue.defer(deferred, timedelta(seconds=5), "wait")
    assert await queue.complete_many(done) == len(done)
    redraw = await queue.claim(limit=10, kinds=frozenset({"refresh"}))
    assert await queue.complete(redraw[0])
    assert await queue.requeued_ids([job.id for job in claimed]) == {failing.id, deferred.id}
    assert await queue.next_due_at() is not None
    assert await queue.next_due_later(frozenset({"notify", "grant"})) is not None
    clock.advance(timedelta(hours=1))  # the failed and deferred ones are due again
    again = await queue.claim(limit=10, running=frozenset({failing.id}))
    assert [job.id for job in again] == [deferred.id]
    assert await queue.complete(again[0])
    assert await queue.complete((await queue.claim(limit=10))[0])


async def test_every_round_runs_the_statements_the_first_one_built(db: Database) -> None:
    clock = FakeClock()
    queue = JobQueue(db, clock, "me")
    rounds: list[list[Any]] = []

    def seen(_conn: Any, statement: Any, *_: Any) -> None:
        rounds[-1].append(statement)  # the object itself (kept alive: ids stay unique)

    event.listen(db.engine.sync_engine, "before_execute", seen)
    for n in range(ROUNDS):
        rounds.append([])
        await _round(db, queue, clock, n)
    event.remove(db.engine.sync_engine, "before_execute", seen)

    first = {id(statement) for statement in rounds[0]}
    for later in rounds[1:]:
        new = [" ".join(str(statement).split())[:160] for statement in later
               if id(statement) not in first]
        assert new == [], "\n".join(new)
