"""The eligibility checks read the person's assignments of the role, not every holder of it.

Every Approve click asks whether the requester is still eligible (``records.eligibility``),
and every grant batch asks it for its requests at once (``records.eligibilities``). With a
role thousands of people are eligible for, a check that walks the role's assignments costs
more with each person added; one that seeks the person's assignment costs the same. Measured
as in ``statement_cost``: SQLite's virtual machine instructions, PostgreSQL's rows read.
"""

from __future__ import annotations

from datetime import timedelta

from pimbot.domain.model import AssignmentType
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow
from pimbot.testing.fakes import FakeClock
from pimbot.workflow.records import eligibilities, eligibility
from statement_cost import Instructions

PEOPLE = 3000  # eligible for one role
ROLE = "prod-db"
MOST = 1_000  # SQLite instructions: a seek runs ~100; the walk of the role, 15,000
MOST_ROWS = 100  # PostgreSQL: rows a plan may read


def _person(i: int) -> str:
    return f"p{i:05d}@example.com"


async def test_eligibility_checks_seek_the_persons_assignment(db: Database) -> None:
    clock = FakeClock()
    now = clock.now()
    async with db.transaction() as session:
        session.add_all([AssignmentRow(
            id=f"a{i:05d}", email=_person(i), role=ROLE, type=AssignmentType.ELIGIBLE.value,
            starts_at=now - timedelta(days=1), ends_at=None, source="policy",
            created_by="", created_at=now) for i in range(PEOPLE)])
        if not db.is_sqlite:  # as autovacuum would: PostgreSQL plans from statistics
            await session.flush()
            await (await session.connection()).exec_driver_sql("ANALYZE assignments")
    seen = Instructions(db)
    found: dict[str, object] = {}

    async def one() -> None:
        async with db.read() as session:
            found["one"] = await eligibility(session, _person(1234), ROLE, now)

    async def batch() -> None:
        async with db.read() as session:
            found["batch"] = await eligibilities(
                session, [(_person(i), ROLE) for i in (7, 1500, 2999)], now)

    costs = {"one": await seen.of(one), "batch": await seen.of(batch)}
    assert isinstance(found["one"], AssignmentRow) and found["one"].email == _person(1234)
    assert isinstance(found["batch"], dict) and len(found["batch"]) == 3
    for check, statements in costs.items():
        assert statements, check
        for statement, cost in statements:
            assert cost < (MOST if db.is_sqlite else MOST_ROWS), (check, statement, cost)
