"""Audit retention: purge the oldest events and keep the rest verifiable.

A purge removes a prefix of the chain (every event older than the cutoff, up to the first one
that is not) and keeps a *floor*: a checkpoint naming the last purged event (its seq, hash and
MAC), MACed under the audit key and stored in the database (``settings`` row
``audit_floor``). Verification starts from the floor instead of the genesis hash: the first
kept event must link to the floor's hash, and the floor's MAC shows it was written with the
audit key. So a purged prefix leaves the rest verifiable, and nobody without the key can move
the floor (a forged or missing floor fails ``pimbot audit verify``, as does a gap after it).

The floor and an ``audit.purged`` event (naming the floor) are written in one transaction
under the chain lock; the events are then deleted in batches, so writers never wait long.
A purge interrupted half-way is finished by the next one. Purging is idempotent across
replicas: the floor only moves forward. The floor is re-sealed under the current key at
every pass, so an old audit key can be dropped once a pass has run after a rotation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.audit_checkpoint import ChainHead, Checkpoint, parse_checkpoints, seal_checkpoint
from pimbot.store.audit_crypto import AuditKeyring, format_time
from pimbot.store.audit_log import append_event
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, SettingRow

FLOOR_KEY = "audit_floor"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DELETE_BATCH = 5000


@dataclass(frozen=True)
class Purge:
    through_seq: int  # the floor after this pass (0: nothing was ever purged)
    deleted: int  # events deleted by this pass


class FloorProblem(Exception):
    """The stored floor is damaged, forged or under a key that is not configured."""


async def stored_floor(session: AsyncSession) -> str | None:
    row = await session.get(SettingRow, FLOOR_KEY)
    return json.dumps(row.value, sort_keys=True) if row is not None else None


async def read_floor(db: Database) -> Checkpoint | None:
    """The authentic floor, None when nothing was purged; raises FloorProblem otherwise."""
    async with db.read() as session:
        text = await stored_floor(session)
    return authentic_floor(text, db.audit_keyring)


def authentic_floor(text: str | None, keyring: AuditKeyring) -> Checkpoint | None:
    if text is None:
        return None
    found = parse_checkpoints([text + "\n"], keyring)
    if found.authentic:
        return found.authentic[0]
    if found.unknown_key:
        raise FloorProblem(f"the retention floor is MACed under audit key "
                           f"{found.unknown_key[0].key_id}, which is not configured (keep it "
                           "in PIMBOT_AUDIT_KEY_PREVIOUS until a purge pass re-seals it)")
    raise FloorProblem("the retention floor does not match its MAC (edited or forged)")


async def purge_before(db: Database, cutoff: datetime, at: datetime) -> Purge:
    """Purge every event older than ``cutoff`` (a contiguous prefix of the chain), keeping
    the newest event always; ``at`` is now (the floor's and the purge event's time)."""
    async with db.transaction() as session:
        await db.lock_audit_chain(session)
        floor = authentic_floor(await stored_floor(session), db.audit_keyring)
        start = floor.head_seq if floor is not None else 0
        head = await session.scalar(select(func.max(AuditEventRow.seq)))
        first_kept = await session.scalar(select(func.min(AuditEventRow.seq)).where(
            AuditEventRow.seq > start, AuditEventRow.at >= cutoff))
        through = start if head is None else (first_kept - 1 if first_kept else head)
        if through > start:
            event = await session.get(AuditEventRow, through)
            assert event is not None
            keyed_from = floor.keyed_from if floor is not None else await _first_keyed(
                session, head or through)
            floor = seal_checkpoint(db.audit_keyring.current,
                                    ChainHead(event.seq, event.hash, event.mac), keyed_from, at)
            await append_event(db, session, at=at, actor="pimbot", action="audit.purged",
                               subject="audit", detail={"through_seq": through,
                                                        "before": format_time(cutoff)})
        elif floor is not None and floor.key_id != db.audit_keyring.current.key_id:
            floor = seal_checkpoint(db.audit_keyring.current, ChainHead(
                floor.head_seq, floor.head_hash, floor.head_mac), floor.keyed_from, at)
        if floor is not None:
            await _save_floor(session, floor)
    return Purge(through, await _delete_through(db, through))


async def _first_keyed(session: AsyncSession, head: int) -> int:
    seq = await session.scalar(select(func.min(AuditEventRow.seq)).where(
        AuditEventRow.mac.is_not(None)))
    return seq if seq is not None else head + 1


async def _save_floor(session: AsyncSession, floor: Checkpoint) -> None:
    value = json.loads(floor.to_json())
    row = await session.get(SettingRow, FLOOR_KEY)
    if row is None:
        session.add(SettingRow(key=FLOOR_KEY, value=value))
    else:
        row.value = value


async def _delete_through(db: Database, through: int) -> int:
    deleted = 0
    while through > 0:
        async with db.transaction() as session:
            lowest = await session.scalar(select(func.min(AuditEventRow.seq)))
            if lowest is None or lowest > through:
                return deleted
            bound = min(through, lowest + DELETE_BATCH - 1)
            result = await session.execute(delete(AuditEventRow).where(
                AuditEventRow.seq <= bound).execution_options(synchronize_session=False))
            deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


async def reseal_floor(db: Database, at: datetime) -> None:
    """Re-seal the floor under the current audit key now (after a key rotation); purges
    nothing."""
    await purge_before(db, EPOCH, at)
