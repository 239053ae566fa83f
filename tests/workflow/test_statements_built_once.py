"""A chat turn's and the worker's statements are built once and reused: after the first
activations (request, Approve, grant, notices), later ones run each statement from the object
that ran it then.
A statement built on every call (``insert(JobRow).on_conflict_do_…``) costs SQLAlchemy more
CPU than running it (docs/PERFORMANCE.md, issue 14)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from pimbot.store.database import Database
from pimbot.ui.cards import ActionId

from .harness import make_pim, request_id_of

LEAD = "lead@example.com"
PEOPLE = [f"user{n}@example.com" for n in range(5)]
REFERENCE = 2  # the first activations, which build what every later one reuses
POLICY = f"""
admins: [{LEAD}]
providers:
  demo: {{type: noop}}
roles:
  db:
    provider: demo
    max_duration: 4h
    approval: {{required: true, approvers: [{LEAD}]}}
    notify: ["#sec-alerts"]
    expiry_reminder: 10m
assignments:
""" + "".join(f"  - {{user: {p}, role: db, type: eligible}}\n" for p in PEOPLE)


async def test_later_activations_run_only_the_statements_the_first_one_built(
        db: Database) -> None:
    pim = await make_pim(db, POLICY)
    rounds: list[list[Any]] = []

    def seen(_conn: Any, statement: Any, *_: Any) -> None:
        rounds[-1].append(statement)  # the object itself (kept alive: ids stay unique)

    event.listen(db.engine.sync_engine, "before_execute", seen)
    for person in PEOPLE:
        rounds.append([])
        asked = await pim.say(person, "activate db for 1h reason nightly restore")
        await pim.click(LEAD, ActionId.APPROVE, request_id_of(asked))
    event.remove(db.engine.sync_engine, "before_execute", seen)

    assert [len(pim.provider.actions("grant"))] == [len(PEOPLE)]
    built: dict[str, set[int]] = {}  # each statement text, and the objects that ran it
    for statement in (s for done in rounds[:REFERENCE] for s in done):
        built.setdefault(_text(statement), set()).add(id(statement))
    for later in rounds[REFERENCE:]:
        # A text first run now is a shape the worker's looks had not needed yet (they
        # depend on timing); a text run before from another object was built again.
        new = [_text(statement) for statement in later
               if id(statement) not in built.get(_text(statement), {id(statement)})]
        assert new == [], "\n".join(new)


def _text(statement: Any) -> str:
    return " ".join(str(statement).split())
