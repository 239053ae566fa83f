"""Audit checkpoints: the head of the chain, MACed, kept outside the database.

A checkpoint names the newest event (``head_seq``, its ``head_hash`` and ``head_mac``), the
first event that must carry a MAC (``keyed_from``: events before it were written before the
chain was keyed), when it was taken, and the ``key_id`` of the key that MACs the record.
Someone who can write the database but not where checkpoints go cannot hide the removal of
the newest events (the head falls behind a checkpoint), nor a rewritten chain (an event
differs from a checkpoint), nor strip the MACs (``keyed_from`` says they were there).

Checkpoints travel as one JSON object a line; ``parse_checkpoints`` sorts a source's lines
into authentic ones, ones under a key that is not configured, and damaged or forged ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from pimbot.store.audit_crypto import (
    GENESIS_HASH,
    AuditKey,
    AuditKeyring,
    format_time,
    macs_match,
)
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ChainHead:
    """The newest event of the chain (seq 0 and the genesis hash when it is empty)."""

    seq: int = 0
    hash: str = GENESIS_HASH
    mac: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    head_seq: int
    head_hash: str
    head_mac: str | None
    keyed_from: int
    at: str
    key_id: str
    mac: str

    def record(self) -> dict[str, Any]:
        """The MACed fields (everything but ``mac``)."""
        return {
            "v": FORMAT_VERSION,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "head_mac": self.head_mac,
            "keyed_from": self.keyed_from,
            "at": self.at,
            "key_id": self.key_id,
        }

    def to_json(self) -> str:
        return json.dumps({**self.record(), "mac": self.mac}, sort_keys=True)

    def matches(self, head: ChainHead) -> bool:
        return self.head_hash == head.hash and self.head_mac == head.mac


def seal_checkpoint(key: AuditKey, head: ChainHead, keyed_from: int, at: datetime) -> Checkpoint:
    unsigned = Checkpoint(head.seq, head.hash, head.mac, keyed_from, format_time(at),
                          key.key_id, mac="")
    return replace(unsigned, mac=key.record_mac(unsigned.record()))


@dataclass
class CheckpointSet:
    """What a checkpoint source held, sorted by what this keyring can say about each line."""

    authentic: list[Checkpoint] = field(default_factory=list)
    unknown_key: list[Checkpoint] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # "line N: why"

    @property
    def newest(self) -> Checkpoint | None:
        """The authentic checkpoint naming the highest event (the last such line on a tie)."""
        best: Checkpoint | None = None
        for checkpoint in self.authentic:
            if best is None or checkpoint.head_seq >= best.head_seq:
                best = checkpoint
        return best


def parse_checkpoints(lines: Iterable[str], keyring: AuditKeyring) -> CheckpointSet:
    """Check every line's MAC. A last line without its newline (a write cut short by a crash)
    is ignored; any other line that does not parse, or whose MAC fails, is ``damaged``."""
    found = CheckpointSet()
    items = list(lines)
    for number, line in enumerate(items, start=1):
        if not line.strip():
            continue
        torn = number == len(items) and not line.endswith("\n")
        try:
            checkpoint = read_checkpoint(line)
        except (ValueError, TypeError, KeyError):
            if not torn:
                found.damaged.append(f"line {number}: not a checkpoint")
            continue
        key = keyring.find(checkpoint.key_id)
        if key is None:
            found.unknown_key.append(checkpoint)
        elif macs_match(key.record_mac(checkpoint.record()), checkpoint.mac):
            found.authentic.append(checkpoint)
        else:
            found.damaged.append(f"line {number}: the checkpoint does not match its MAC "
                                 f"(edited or forged; it names event {checkpoint.head_seq})")
    return found


def read_checkpoint(line: str) -> Checkpoint:
    """The fields of one checkpoint line (its MAC not checked); ValueError, TypeError or
    KeyError when it is not one."""
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise ValueError("not a checkpoint")
    head_mac = data["head_mac"]
    checkpoint = Checkpoint(
        head_seq=int(data["head_seq"]),
        head_hash=str(data["head_hash"]),
        head_mac=None if head_mac is None else str(head_mac),
        keyed_from=int(data["keyed_from"]),
        at=str(data["at"]),
        key_id=str(data["key_id"]),
        mac=str(data["mac"]),
    )
    if checkpoint.head_seq < 0 or checkpoint.keyed_from < 1:
        raise ValueError("not a checkpoint")
    return checkpoint


async def chain_head(db: Database) -> ChainHead:
    """The newest event: one indexed read (the primary key, newest first)."""
    query = select(AuditEventRow.seq, AuditEventRow.hash, AuditEventRow.mac)
    async with db.read() as session:
        row = (await session.execute(query.order_by(AuditEventRow.seq.desc()).limit(1))).first()
    return ChainHead(row[0], row[1], row[2]) if row else ChainHead()


async def event_head(db: Database, seq: int) -> ChainHead | None:
    """Event ``seq`` as a checkpoint would name it, or None when it is not in the log."""
    query = select(AuditEventRow.seq, AuditEventRow.hash, AuditEventRow.mac)
    async with db.read() as session:
        row = (await session.execute(query.where(AuditEventRow.seq == seq))).first()
    return ChainHead(row[0], row[1], row[2]) if row else None


async def first_keyed_seq(db: Database, head: ChainHead) -> int:
    """The first event that carries a MAC; past the head when none does yet (an upgraded log
    whose older events were written before the chain was keyed)."""
    query = select(AuditEventRow.seq).where(AuditEventRow.mac.is_not(None))
    async with db.read() as session:
        seq = (await session.execute(query.order_by(AuditEventRow.seq).limit(1))).scalar()
    return seq if seq is not None else head.seq + 1


async def take_checkpoint(
    db: Database, at: datetime, keyed_from: int | None = None
) -> Checkpoint:
    """A checkpoint of the chain's head now, MACed under the database handle's current key."""
    head = await chain_head(db)
    if keyed_from is None:
        keyed_from = await first_keyed_seq(db, head)
    return seal_checkpoint(db.audit_keyring.current, head, keyed_from, at)
