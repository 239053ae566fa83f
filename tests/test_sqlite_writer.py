"""SQLite writers waiting for each other share one COMMIT (group commit): each one's changes
are its own (a failure undoes only them), each ``async with`` exits only once they are
committed, callbacks run after that, cancellation at any point leaves nothing half done,
turns are first come first served, a group is bounded, and a kill -9 in the middle of a group
leaves no writer half applied and none acknowledged before its commit."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.database import Database
from pimbot.store.sqlite_writer import SqliteWriter
from pimbot.store.tables import PersonRow

_ADD = text("INSERT INTO people (email, display_name, created_at) "
            "VALUES (:e, '', '2026-11-02 09:00:00.000000')")
HANG_S = 20  # a hang fails the test instead of blocking the run (not a timing threshold)


def _writer(db: Database, *, most: int = 64) -> SqliteWriter:
    writer = db.sqlite_writer
    assert writer is not None
    writer.group_span_s = 3600.0  # groups end when nobody waits (or at ``most``), not by time
    writer.group_most = most
    return writer


def _outside(db: Database) -> set[str]:
    """What another connection (another process's view) sees committed."""
    assert db.sqlite_path is not None
    conn = sqlite3.connect(db.sqlite_path)
    try:
        return {row[0] for row in conn.execute("SELECT email FROM people")}
    finally:
        conn.close()


async def _add(session: AsyncSession, email: str) -> None:
    await session.execute(_ADD, {"e": email})


class Gate:
    """Holds the first writer's turn open until the others are queued behind it."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def queued(self, *tasks: asyncio.Task[object]) -> None:
        for _ in range(10):  # let every task reach its wait for the turn
            await asyncio.sleep(0)
        assert not any(task.done() for task in tasks)
        self.open.set()


def _spawn(coro: Awaitable[object]) -> asyncio.Task[object]:
    return asyncio.ensure_future(coro)


async def test_writers_queued_together_commit_once_and_each_exits_after_that_commit(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate = Gate()
    seen_at_exit: dict[str, set[str]] = {}
    seen_inside: dict[str, set[str]] = {}
    commits: list[int] = []
    event.listen(sqlite_db.engine.sync_engine, "commit", lambda _conn: commits.append(1))

    async def write(email: str, hold: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, email)
            if hold:
                await gate.open.wait()
            seen_inside[email] = _outside(sqlite_db)
        seen_at_exit[email] = _outside(sqlite_db)

    first = _spawn(write("a@example.com", hold=True))
    await asyncio.sleep(0)
    others = [_spawn(write(f"{name}@example.com")) for name in "bc"]
    await gate.queued(first, *others)
    async with asyncio.timeout(HANG_S):
        await asyncio.gather(first, *others)
    assert seen_inside["c@example.com"] == set()  # a and b were not committed yet: one group
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        assert email in seen_at_exit[email], email  # committed before its async-with exited
    assert len(commits) == 1


async def test_a_failing_writer_undoes_only_its_own_changes(sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate = Gate()

    async def write(email: str, *, hold: bool = False, fail: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, email)
            if hold:
                await gate.open.wait()
            if fail:
                raise LookupError("refused")

    first = _spawn(write("a@example.com", hold=True))
    await asyncio.sleep(0)
    failing = _spawn(write("b@example.com", fail=True))
    last = _spawn(write("c@example.com"))
    await gate.queued(first, failing, last)
    async with asyncio.timeout(HANG_S):
        outcomes = await asyncio.gather(first, failing, last, return_exceptions=True)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], LookupError)
    assert _outside(sqlite_db) == {"a@example.com", "c@example.com"}


async def test_commit_callbacks_run_after_the_commit_with_each_writers_own_session(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate = Gate()
    called: list[tuple[str, bool]] = []

    def after(session: AsyncSession) -> None:
        email = session.info["email"]
        called.append((email, email in _outside(sqlite_db)))

    sqlite_db.on_commit(after)

    async def write(email: str, hold: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            session.info["email"] = email
            await _add(session, email)
            if hold:
                await gate.open.wait()

    first = _spawn(write("a@example.com", hold=True))
    await asyncio.sleep(0)
    second = _spawn(write("b@example.com"))
    await gate.queued(first, second)
    async with asyncio.timeout(HANG_S):
        await asyncio.gather(first, second)
    assert sorted(called) == [("a@example.com", True), ("b@example.com", True)]


async def test_a_read_inside_a_writers_turn_sees_the_writers_before_it_in_the_group(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate = Gate()
    found: list[object] = []

    async def first_write() -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, "a@example.com")
            await gate.open.wait()

    async def second_write() -> None:
        async with sqlite_db.transaction() as session:
            async with sqlite_db.read() as inner:
                found.append(await inner.scalar(text(
                    "SELECT email FROM people WHERE email = 'a@example.com'")))
            await _add(session, "b@example.com")

    first = _spawn(first_write())
    await asyncio.sleep(0)
    second = _spawn(second_write())
    await gate.queued(first, second)
    async with asyncio.timeout(HANG_S):
        await asyncio.gather(first, second)
    assert found == ["a@example.com"]
    assert _outside(sqlite_db) == {"a@example.com", "b@example.com"}


async def test_a_writer_cancelled_while_it_waits_for_its_turn_changes_nothing(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate = Gate()
    ran: list[str] = []

    async def write(email: str, hold: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            ran.append(email)
            await _add(session, email)
            if hold:
                await gate.open.wait()

    first = _spawn(write("a@example.com", hold=True))
    await asyncio.sleep(0)
    cancelled = _spawn(write("b@example.com"))
    last = _spawn(write("c@example.com"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await gate.queued(first, last)
    async with asyncio.timeout(HANG_S):
        await asyncio.gather(first, last)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert ran == ["a@example.com", "c@example.com"]
    assert _outside(sqlite_db) == {"a@example.com", "c@example.com"}


async def test_a_writer_cancelled_in_its_body_is_undone_and_the_group_goes_on(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate, stuck = Gate(), asyncio.Event()

    async def write(email: str, *, hold: bool = False, wait: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, email)
            if hold:
                await gate.open.wait()
            if wait:
                stuck.set()
                await asyncio.Event().wait()  # until cancelled

    first = _spawn(write("a@example.com", hold=True))
    await asyncio.sleep(0)
    middle = _spawn(write("b@example.com", wait=True))
    last = _spawn(write("c@example.com"))
    await gate.queued(first, middle, last)
    async with asyncio.timeout(HANG_S):
        await stuck.wait()
        middle.cancel()
        await asyncio.gather(first, last)
    with pytest.raises(asyncio.CancelledError):
        await middle
    assert _outside(sqlite_db) == {"a@example.com", "c@example.com"}


async def test_a_writer_cancelled_while_it_waits_for_the_commit_raises_only_after_it(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate, second_in = Gate(), asyncio.Event()
    seen_when_cancelled: list[set[str]] = []

    async def first_write() -> None:
        try:
            async with sqlite_db.transaction() as session:
                await _add(session, "a@example.com")
                await gate.open.wait()
        except asyncio.CancelledError:
            seen_when_cancelled.append(_outside(sqlite_db))
            raise

    async def second_write() -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, "b@example.com")
            second_in.set()
            for _ in range(5):  # the first writer, waiting for the commit, is cancelled now
                await asyncio.sleep(0)

    first = _spawn(first_write())
    await asyncio.sleep(0)
    second = _spawn(second_write())
    await gate.queued(first, second)
    async with asyncio.timeout(HANG_S):
        await second_in.wait()
        first.cancel()
        await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert seen_when_cancelled == [{"a@example.com", "b@example.com"}]


async def test_a_writer_cancelled_just_as_its_turn_came_still_lets_the_group_commit(
        sqlite_db: Database) -> None:
    _writer(sqlite_db)
    gate = Gate()
    tasks: dict[str, asyncio.Task[object]] = {}

    async def first_write() -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, "a@example.com")
            await gate.open.wait()
            # Runs before the task the turn is handed to, once this writer has handed it on.
            asyncio.get_running_loop().call_soon(tasks["second"].cancel)

    async def second_write() -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, "b@example.com")

    tasks["first"] = _spawn(first_write())
    await asyncio.sleep(0)
    tasks["second"] = _spawn(second_write())
    await gate.queued(tasks["first"], tasks["second"])
    async with asyncio.timeout(HANG_S):
        await tasks["first"]  # would wait forever for a commit nobody sends
    with pytest.raises(asyncio.CancelledError):
        await tasks["second"]
    assert _outside(sqlite_db) == {"a@example.com"}
    async with sqlite_db.transaction() as session:  # and the turn is free again
        await _add(session, "c@example.com")
    assert _outside(sqlite_db) == {"a@example.com", "c@example.com"}


async def test_turns_are_first_come_first_served(sqlite_db: Database) -> None:
    _writer(sqlite_db, most=4)
    gate = Gate()
    order: list[int] = []

    async def write(n: int, hold: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            order.append(n)
            await _add(session, f"p{n}@example.com")
            if hold:
                await gate.open.wait()
            await asyncio.sleep(0)  # newcomers arrive while turns are handed on

    first = _spawn(write(0, hold=True))
    await asyncio.sleep(0)
    queued = [_spawn(write(n)) for n in range(1, 11)]
    await gate.queued(first, *queued)
    late = [_spawn(write(n)) for n in range(11, 16)]
    async with asyncio.timeout(HANG_S):
        await asyncio.gather(first, *queued, *late)
    assert order == list(range(16))


async def test_a_group_is_bounded_so_the_first_writers_are_answered_while_others_wait(
        sqlite_db: Database) -> None:
    _writer(sqlite_db, most=3)
    gate = Gate()
    happened: list[str] = []
    committed_before: dict[int, set[str]] = {}

    async def write(n: int, hold: bool = False) -> None:
        async with sqlite_db.transaction() as session:
            happened.append(f"body {n}")
            committed_before[n] = _outside(sqlite_db)
            await _add(session, f"p{n}@example.com")
            if hold:
                await gate.open.wait()
        happened.append(f"exit {n}")

    first = _spawn(write(0, hold=True))
    await asyncio.sleep(0)
    queued = [_spawn(write(n)) for n in range(1, 7)]
    await gate.queued(first, *queued)
    async with asyncio.timeout(HANG_S):
        await asyncio.gather(first, *queued)
    assert committed_before[3] == {"p0@example.com", "p1@example.com", "p2@example.com"}
    assert happened.index("exit 0") < happened.index("exit 3")  # answered in that commit
    assert len(_outside(sqlite_db)) == 7


# -- a writer alone (GROUP_MOST 1, the default): its own transaction, no savepoint ---------


async def _traced(db: Database) -> list[str]:
    """The SQL the held connection sends from now on (sqlite3's own trace: the savepoints
    sent straight to sqlite3 included)."""
    async with db.transaction() as session:  # the held connection exists from here on
        await _add(session, "warm@example.com")
    writer = db.sqlite_writer
    assert writer is not None and writer.group_most == 1  # the default
    sent: list[str] = []
    writer._raw().set_trace_callback(sent.append)
    return sent


async def test_a_writer_alone_sends_its_statements_between_begin_and_commit_only(
        sqlite_db: Database) -> None:
    sent = await _traced(sqlite_db)
    async with sqlite_db.transaction() as session:
        await _add(session, "a@example.com")
        await _add(session, "b@example.com")
    assert [line.split()[0] for line in sent] == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
    assert {"a@example.com", "b@example.com"} <= _outside(sqlite_db)


async def test_a_writer_alone_that_fails_leaves_nothing_and_the_next_one_commits(
        sqlite_db: Database) -> None:
    sent = await _traced(sqlite_db)
    with pytest.raises(LookupError):
        async with sqlite_db.transaction() as session:
            await _add(session, "a@example.com")
            raise LookupError("refused")

    async def cancelled() -> None:
        async with sqlite_db.transaction() as session:
            await _add(session, "b@example.com")
            await asyncio.Event().wait()

    task = _spawn(cancelled())
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for email in ("c@example.com", "d@example.com"):
        async with sqlite_db.transaction() as session:
            await _add(session, email)
    assert _outside(sqlite_db) == {"warm@example.com", "c@example.com", "d@example.com"}
    assert [line.split()[0] for line in sent].count("ROLLBACK") == 2


async def test_a_writer_alone_with_rows_left_to_flush_commits_them(
        sqlite_db: Database) -> None:
    await _traced(sqlite_db)
    async with sqlite_db.transaction() as session:
        session.add(PersonRow(email="a@example.com", created_at=datetime.now(UTC)))
    async with sqlite_db.transaction() as session:
        await _add(session, "b@example.com")
        session.add(PersonRow(email="c@example.com", created_at=datetime.now(UTC)))
    assert {"a@example.com", "b@example.com", "c@example.com"} <= _outside(sqlite_db)


CHILD = """
import asyncio, sys
from sqlalchemy import text
from pimbot.store.database import Database

ADD = text("INSERT INTO people (email, display_name, created_at) "
           "VALUES (:e, '', '2026-11-02 09:00:00.000000')")

async def main(url):
    db = Database(url)
    n = 0
    async def writer(lane):
        nonlocal n
        while True:
            n += 1
            mine = n
            async with db.transaction() as session:
                await session.execute(ADD, {"e": f"w{mine}-first@example.com"})
                await asyncio.sleep(0)  # others queue behind this writer: groups form
                await session.execute(ADD, {"e": f"w{mine}-second@example.com"})
            sys.stdout.write(f"{mine}\\n")  # acknowledged
            sys.stdout.flush()
    await asyncio.gather(*(writer(lane) for lane in range(8)))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_kill_in_the_middle_of_groups_leaves_no_writer_half_applied_or_acked_early(
        sqlite_db: Database) -> None:
    path = sqlite_db.sqlite_path
    assert path is not None
    await sqlite_db.dispose()
    for kill_after in (150, 400, 700):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, f"sqlite+aiosqlite:///{path}",
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert child.stdout is not None
        acked: set[int] = set()
        async with asyncio.timeout(HANG_S * 3):
            while len(acked) < kill_after:
                line = await child.stdout.readline()
                assert line, "the writer process ended"
                acked.add(int(line))
            child.send_signal(signal.SIGKILL)
            await child.wait()
        conn = sqlite3.connect(path)
        emails = {row[0] for row in conn.execute("SELECT email FROM people")}
        conn.close()
        written = {int(e[1:].split("-")[0]) for e in emails if e.startswith("w")}
        halves = {n for n in written
                  if {f"w{n}-first@example.com", f"w{n}-second@example.com"} - emails}
        assert not halves, f"half applied: {sorted(halves)[:5]}"
        missing = acked - written
        assert not missing, f"acknowledged, not committed: {sorted(missing)[:5]}"
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM people WHERE email LIKE 'w%'")
        conn.commit()
        conn.close()


