"""Audit retention: purge the oldest events and keep the rest verifiable.

A purge removes a prefix of the chain (every event older than the cutoff, up to the first one
that is not) and keeps a *floor*: a record naming the last purged event (its seq, hash and
MAC), MACed under the audit key and stored in the database (``settings`` row
``audit_floor``). Verification starts from the floor instead of the genesis hash: the first
kept event must link to the floor's hash, and the floor's MAC shows it was written with the
audit key. So a purged prefix leaves the rest verifiable, and nobody without the key can move
the floor (a forged or missing floor fails ``pimbot audit verify``, as does a gap after it).

A floor has the fields of a checkpoint, but is no checkpoint: its record says
``"kind": "floor"`` and is MACed under a label of its own (``AuditKey.floor_mac``), because
checkpoint lines are not secret (anyone who reads the file, or GETs the receiver, has them)
and one planted as the floor would hide every event up to it.

The floor and an ``audit.purged`` event naming it (``through_seq`` and ``through_hash``) are
written in one transaction under the chain lock, so that event is in the chain after the
floor; a floor counts only while it is (``audit_verify`` rule 6, and every pass here). The
events are then deleted in batches, so writers never wait long. A purge interrupted half-way
is finished by the next one. Purging is idempotent across replicas: the floor only moves
forward. The floor is re-sealed under the current key at every pass, so an old audit key can
be dropped once a pass has run after a rotation.

Floors stored before they had a MAC of their own (sealed as checkpoints, with an
``audit.purged`` event naming the seq only) still count when that event is there with its
own MAC under a configured key (any checkpoint line has the legacy form, so being vouched for
by a later event is not enough); the next pass (``pimbot run`` at start, or ``pimbot audit
purge``) re-seals them as floors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.audit_checkpoint import ChainHead, Checkpoint, read_checkpoint
from pimbot.store.audit_crypto import AuditKey, AuditKeyring, event_hash, format_time, macs_match
from pimbot.store.audit_log import append_event
from pimbot.store.audit_verify import PURGE_ACTION, Floor, purge_names
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, SettingRow

FLOOR_KEY = "audit_floor"
FLOOR_KIND = "floor"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DELETE_BATCH = 5000


@dataclass(frozen=True)
class Purge:
    through_seq: int  # the floor after this pass (0: nothing was ever purged)
    deleted: int  # events deleted by this pass


class FloorProblem(Exception):
    """The stored floor is damaged, forged or under a key that is not configured."""


def floor_record(floor: Checkpoint) -> dict[str, object]:
    """The MACed fields of a floor: a checkpoint's, and its kind."""
    return {**floor.record(), "kind": FLOOR_KIND}


def floor_json(floor: Checkpoint) -> str:
    return json.dumps({**floor_record(floor), "mac": floor.mac}, sort_keys=True)


def seal_floor(key: AuditKey, head: ChainHead, keyed_from: int, at: datetime) -> Checkpoint:
    unsigned = Checkpoint(head.seq, head.hash, head.mac, keyed_from, format_time(at),
                          key.key_id, mac="")
    return replace(unsigned, mac=key.floor_mac(floor_record(unsigned)))


async def stored_floor(session: AsyncSession) -> str | None:
    row = await session.get(SettingRow, FLOOR_KEY)
    return json.dumps(row.value, sort_keys=True) if row is not None else None


async def read_floor(db: Database) -> Floor | None:
    """The floor if its MAC is good, None when nothing was purged; raises FloorProblem
    otherwise. Whether its ``audit.purged`` event follows is the verifier's to check."""
    async with db.read() as session:
        text = await stored_floor(session)
    return authentic_floor(text, db.audit_keyring)


def authentic_floor(text: str | None, keyring: AuditKeyring) -> Floor | None:
    if text is None:
        return None
    try:
        floor = read_checkpoint(text)
        legacy = json.loads(text).get("kind") != FLOOR_KIND
    except (ValueError, TypeError, KeyError, AttributeError):
        raise FloorProblem("the retention floor is not a floor record (edited?)") from None
    key = keyring.find(floor.key_id)
    if key is None:
        raise FloorProblem(f"the retention floor is MACed under audit key {floor.key_id}, "
                           "which is not configured (keep it in PIMBOT_AUDIT_KEY_PREVIOUS "
                           "until a purge pass re-seals it)")
    expected = key.record_mac(floor.record()) if legacy else key.floor_mac(floor_record(floor))
    if not macs_match(expected, floor.mac):
        raise FloorProblem("the retention floor does not match its MAC (edited or forged)")
    return Floor(floor, legacy)


async def floor_in_chain(session: AsyncSession, keyring: AuditKeyring) -> Floor | None:
    """The stored floor, when its MAC is good and the ``audit.purged`` event naming it is in
    the chain after it (a legacy floor's with its own good MAC, as ``audit_verify`` rule 6
    asks); raises FloorProblem otherwise, so a pass never re-seals, or moves on from, a floor
    that pimbot did not write."""
    sealed = authentic_floor(await stored_floor(session), keyring)
    if sealed is None:
        return None
    floor = sealed.point
    purges = await session.scalars(select(AuditEventRow).where(
        AuditEventRow.action == PURGE_ACTION, AuditEventRow.seq > floor.head_seq))
    if not any(purge_names(row.detail, floor) and (not sealed.legacy or _authentic(row, keyring))
               for row in purges):
        raise FloorProblem(f"the retention floor names event {floor.head_seq}, but no "
                           "audit.purged event after it names the floor (a checkpoint line "
                           "copied into the database?)")
    return sealed


def _authentic(row: AuditEventRow, keyring: AuditKeyring) -> bool:
    key = keyring.find(row.key_id)
    digest = event_hash(seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                        subject=row.subject, outcome=row.outcome, detail=row.detail,
                        prev_hash=row.prev_hash)
    return key is not None and digest == row.hash and macs_match(key.event_mac(digest), row.mac)


async def purge_before(db: Database, cutoff: datetime, at: datetime) -> Purge:
    """Purge every event older than ``cutoff`` (a contiguous prefix of the chain), keeping
    the newest event always; ``at`` is now (the floor's and the purge event's time)."""
    keyring = db.audit_keyring
    async with db.transaction() as session:
        await db.lock_audit_chain(session)
        sealed = await floor_in_chain(session, keyring)
        floor = sealed.point if sealed is not None else None
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
            floor = seal_floor(keyring.current, ChainHead(event.seq, event.hash, event.mac),
                               keyed_from, at)
            await append_event(db, session, at=at, actor="pimbot", action=PURGE_ACTION,
                               subject="audit", detail={"through_seq": through,
                                                        "through_hash": event.hash,
                                                        "before": format_time(cutoff)})
        elif floor is not None and sealed is not None and (
                sealed.legacy or floor.key_id != keyring.current.key_id):
            floor = seal_floor(keyring.current, ChainHead(
                floor.head_seq, floor.head_hash, floor.head_mac), floor.keyed_from, at)
        if floor is not None:
            await _save_floor(session, floor)
    return Purge(through, await _delete_through(db, through))


async def _first_keyed(session: AsyncSession, head: int) -> int:
    seq = await session.scalar(select(func.min(AuditEventRow.seq)).where(
        AuditEventRow.mac.is_not(None)))
    return seq if seq is not None else head + 1


async def _save_floor(session: AsyncSession, floor: Checkpoint) -> None:
    value = json.loads(floor_json(floor))
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
