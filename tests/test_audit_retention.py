"""Audit retention: a purged prefix leaves the rest verifiable (through a floor MACed under
the audit key), and a purge can neither be faked nor hide tampering after it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update

from pimbot.store import audit_retention
from pimbot.store.audit_checkpoint import Checkpoint, take_checkpoint
from pimbot.store.audit_crypto import AuditKey, AuditKeyring
from pimbot.store.audit_log import append_event, verify_chain
from pimbot.store.audit_retention import FLOOR_KEY, purge_before
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, SettingRow

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=400)


async def _events(db: Database, old: int, recent: int) -> list[Checkpoint]:
    """``old`` events before the cutoff, then ``recent`` after it; a checkpoint after each
    group (kept outside the database)."""
    taken = []
    for n in range(old + recent):
        at = CUTOFF - timedelta(days=30 - n) if n < old else NOW - timedelta(hours=old + recent - n)
        async with db.transaction() as session:
            await append_event(db, session, at=at, actor="policy", action="x", subject=str(n))
        if n + 1 in (old - 2, old + recent):
            taken.append(await take_checkpoint(db, at))
    return taken


async def _seqs(db: Database) -> tuple[int | None, int | None, int]:
    async with db.read() as session:
        low = await session.scalar(select(func.min(AuditEventRow.seq)))
        high = await session.scalar(select(func.max(AuditEventRow.seq)))
        count = await session.scalar(select(func.count()).select_from(AuditEventRow))
    return low, high, int(count or 0)


async def test_a_purged_prefix_leaves_the_rest_verifiable(db: Database) -> None:
    checkpoints = await _events(db, 10, 5)
    purge = await purge_before(db, CUTOFF, NOW)
    assert (purge.through_seq, purge.deleted) == (10, 10)
    assert await _seqs(db) == (11, 16, 6)  # five kept, and the audit.purged event
    report = await verify_chain(db, checkpoints=checkpoints)
    assert report.ok, report.problem
    assert report.checked == 6 and report.head_seq == 16
    async with db.read() as session:
        purged = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "audit.purged"))).scalar_one()
    assert purged.detail["through_seq"] == 10

    again = await purge_before(db, CUTOFF, NOW + timedelta(hours=6))
    assert (again.through_seq, again.deleted) == (10, 0), "a second pass purges nothing"
    assert (await verify_chain(db, checkpoints=checkpoints)).ok


async def test_tampering_after_a_purge_is_still_found(db: Database) -> None:
    checkpoints = await _events(db, 6, 4)
    await purge_before(db, CUTOFF, NOW)
    async with db.transaction() as session:
        await session.execute(update(AuditEventRow).where(AuditEventRow.seq == 8).values(
            subject="edited"))
    report = await verify_chain(db, checkpoints=checkpoints)
    assert not report.ok and report.first_bad_seq == 8


async def test_events_deleted_without_a_floor_fail_verification(db: Database) -> None:
    await _events(db, 6, 4)
    async with db.transaction() as session:  # a database admin "purges" by hand
        await session.execute(delete(AuditEventRow).where(AuditEventRow.seq <= 6))
    report = await verify_chain(db)
    assert not report.ok and report.first_bad_seq == 7


async def test_a_floor_moved_or_removed_by_hand_fails_verification(db: Database) -> None:
    await _events(db, 6, 4)
    await purge_before(db, CUTOFF, NOW)
    async with db.transaction() as session:  # hide two more events by moving the floor
        row = await session.get(SettingRow, FLOOR_KEY)
        assert row is not None
        forged = dict(row.value, head_seq=8)
        await session.execute(update(SettingRow).where(SettingRow.key == FLOOR_KEY).values(
            value=forged))
        await session.execute(delete(AuditEventRow).where(AuditEventRow.seq <= 8))
    report = await verify_chain(db)
    assert not report.ok and "floor" in report.problem
    async with db.transaction() as session:
        await session.execute(delete(SettingRow).where(SettingRow.key == FLOOR_KEY))
    report = await verify_chain(db)
    assert not report.ok and report.first_bad_seq == 9


async def test_a_purge_cut_short_is_finished_by_the_next_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _events(db, 6, 4)

    async def crashed(_db: Database, _through: int) -> int:
        return 0  # the process died after writing the floor, before deleting

    monkeypatch.setattr(audit_retention, "_delete_through", crashed)
    await purge_before(db, CUTOFF, NOW)
    assert (await _seqs(db))[0] == 1
    assert (await verify_chain(db)).ok, "events below the floor are passed over"
    monkeypatch.undo()
    again = await purge_before(db, CUTOFF, NOW + timedelta(hours=6))
    assert (again.through_seq, again.deleted) == (6, 6)
    assert (await _seqs(db))[0] == 7
    assert (await verify_chain(db)).ok


async def test_the_floor_is_resealed_under_a_new_audit_key(db: Database) -> None:
    await _events(db, 6, 4)
    await purge_before(db, CUTOFF, NOW)
    old = db.audit_keyring.current
    new = AuditKey(secrets.token_bytes(32))
    db.audit_keyring = AuditKeyring(new, (old,))
    assert (await verify_chain(db)).ok, "the old key still vouches for the floor"
    await purge_before(db, CUTOFF, NOW + timedelta(hours=6))  # re-seals, purges nothing
    db.audit_keyring = AuditKeyring(new)
    report = await verify_chain(db)
    assert not report.ok  # the events written under the old key are not vouched for ...
    assert "floor" not in report.problem  # ... but the floor itself now is
    again = await purge_before(db, CUTOFF, NOW + timedelta(hours=12))  # its audit.purged
    assert again.through_seq == 6  # event is under the dropped key: the floor still stands
