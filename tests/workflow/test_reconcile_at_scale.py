"""A reconcile pass over many active assignments: its reads do not grow with them, and on
SQLite (whose statements run on the event loop's thread) it lets the loop turn while it
works, so the HTTP server and the probes answer during a start with thousands of them."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from pimbot.store.database import Database
from pimbot.workflow.usecases.assignment import RECONCILE_SLICE, reconcile

from .harness import POLICY, Pim, make_pim


def _with_active(count: int) -> str:
    return POLICY + "".join(
        f"  - {{user: user{i}@example.com, role: staging-deploy, type: active}}\n"
        for i in range(count))


async def _granted(db: Database, count: int) -> Pim:
    """A start with ``count`` active assignments in the policy (later calls on the same
    database add to the earlier ones: the same people, more of them)."""
    pim = await make_pim(db, _with_active(count))
    await reconcile(pim.core.ctx)  # what start() does: a grant for each active assignment
    await pim.core.drain()
    assert len(pim.provider.actions("grant")) > 0
    return pim


async def _statements_of_a_pass(db: Database, pim: Pim) -> int:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await reconcile(pim.core.ctx)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return len(seen)


async def test_a_pass_over_granted_assignments_reads_them_at_once(db: Database) -> None:
    few = await _statements_of_a_pass(db, await _granted(db, 3))
    many = await _statements_of_a_pass(db, await _granted(db, 30))
    assert many == few, f"{few} statements for 3 assignments, {many} for 30"


async def test_the_loop_turns_while_a_pass_opens_many_grants(db: Database) -> None:
    count = 3 * RECONCILE_SLICE
    pim = await make_pim(db, _with_active(count))  # applied; the pass opens their grants
    statements = 0
    gaps: list[int] = []  # statements run between two turns of the loop
    done = asyncio.Event()

    def counted(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    async def ticker() -> None:
        last = statements
        while not done.is_set():
            gaps.append(statements - last)
            last = statements
            await asyncio.sleep(0)

    event.listen(db.engine.sync_engine, "before_cursor_execute", counted)
    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        assert await reconcile(pim.core.ctx) == count
    finally:
        done.set()
        await task
        event.remove(db.engine.sync_engine, "before_cursor_execute", counted)
    assert max(gaps) <= statements // 2, (
        f"{max(gaps)} of the pass's {statements} statements ran without the loop turning")
