"""The append-only, hash-chained, keyed audit log.

Every event is hashed over a canonical form that includes its ``seq`` and the previous event's
hash, and the hash is MACed under the audit key (``pimbot.store.audit_crypto``), so editing,
deleting, reordering or forging an event breaks the chain at a point that ``verify_chain``
names, even when whoever did it recomputed the hashes; checkpoints kept outside the database
(``pimbot.store.audit_checkpoint``) add removal of the newest events. Events are appended
inside the caller's write transaction, so an event exists exactly when the change it
describes committed.

``detail`` is stored in clear and exported to auditors: callers must never put a token,
secret, password or OTP code in it (ids, emails, role names, durations and reasons only).
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from sqlalchemy import String, cast, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pimbot.store.audit_checkpoint import Checkpoint
from pimbot.store.audit_crypto import GENESIS_HASH, event_hash, format_time
from pimbot.store.audit_verify import ChainReport, ChainVerifier, stored_events
from pimbot.store.database import Database
from pimbot.store.prepared import Prepared, run, run_many
from pimbot.store.tables import AuditEventRow

EXPORT_COLUMNS = (
    "seq", "at", "actor", "action", "subject", "outcome", "detail", "prev_hash", "hash",
    "key_id", "mac",
)
APPENDED_FLAG = "pimbot_audit_appended"  # session.info: this transaction extended the chain
_BATCH = 1000
# Built once and run at the driver (``store/prepared.py``): a turn appends one event, and
# these two statements through ``session.execute`` cost more than the hashing and the MAC.
CHAIN_HEAD = Prepared(select(AuditEventRow.seq, AuditEventRow.hash)
                      .order_by(AuditEventRow.seq.desc()).limit(1))
_EVENT_COLUMNS = ("seq", "at", "actor", "action", "subject", "outcome", "detail", "prev_hash",
                  "hash", "key_id", "mac", "once_key")
INSERT_EVENT = Prepared(insert(AuditEventRow.__table__),  # type: ignore[arg-type]
                        keys=_EVENT_COLUMNS)


async def append_event(
    db: Database,
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    once_key: str | None = None,
) -> None:
    """Append one event to the chain inside the caller's write transaction.

    Takes the chain lock (a PostgreSQL advisory transaction lock; SQLite writers are already
    serial), so concurrent writers extend one chain; the MAC costs no query. ``detail`` must
    be JSON-serialisable and must never contain secrets (tokens, passwords, OTP codes).
    ``once_key`` names an event that may be recorded once only (``grant.revoked:ID``): a
    second one fails the caller's transaction (IntegrityError on the unique constraint, at
    this flush), whichever replica writes it.
    """
    event = NewEvent(at=at, actor=actor, action=action, subject=subject, outcome=outcome,
                     detail=dict(detail or {}), once_key=once_key)
    values = (await _chained(db, session, [event]))[0]
    await run(session, INSERT_EVENT, values)  # prepared once, not an ORM add and flush
    session.info[APPENDED_FLAG] = True


@dataclass(frozen=True)
class NewEvent:
    """One event for ``append_events`` (``append_event``'s arguments)."""

    at: datetime
    actor: str
    action: str
    subject: str = ""
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)
    once_key: str | None = None


async def append_events(db: Database, session: AsyncSession, events: Sequence[NewEvent]
                        ) -> int:
    """Append ``events``, in order, to the chain in the caller's write transaction: one chain
    lock, one read of the head and one INSERT for all of them, however many (the hashes are
    computed in one go; the rows go as one executemany, which SQLAlchemy sends as multi-row
    pages of a statement compiled once). The rules of ``append_event`` hold for each (a
    repeated ``once_key`` fails the caller's transaction here). Returns how many."""
    if not events:
        return 0
    rows = await _chained(db, session, events)
    await run_many(session, INSERT_EVENT, rows)  # prepared once
    session.info[APPENDED_FLAG] = True
    return len(rows)


async def _chained(db: Database, session: AsyncSession, events: Sequence[NewEvent]
                   ) -> list[dict[str, Any]]:
    """The rows of ``events`` chained after the head, under the chain lock."""
    if any(event.at.tzinfo is None for event in events):
        raise ValueError("naive datetime in the audit log; pimbot keeps aware UTC times only")
    await db.lock_audit_chain(session)
    last = (await run(session, CHAIN_HEAD)).first()  # the caller's pending ORM changes go first
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    key = db.audit_keyring.current
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        body = dict(event.detail)
        at = event.at.astimezone(UTC)
        digest = event_hash(seq=seq, at=at, actor=event.actor, action=event.action,
                            subject=event.subject, outcome=event.outcome, detail=body,
                            prev_hash=prev_hash)
        rows.append({"seq": seq, "at": at, "actor": event.actor, "action": event.action,
                     "subject": event.subject, "outcome": event.outcome, "detail": body,
                     "prev_hash": prev_hash, "hash": digest, "key_id": key.key_id,
                     "mac": key.event_mac(digest), "once_key": event.once_key})
        prev_hash = digest
    return rows


async def _all_events(
    db: Database, since: datetime | None = None, after: int = 0
) -> AsyncIterator[AuditEventRow]:
    """Every event (after seq ``after``) in seq order, read in batches (constant memory)."""
    while True:
        query = select(AuditEventRow).where(AuditEventRow.seq > after)
        if since is not None:
            query = query.where(AuditEventRow.at >= since)
        query = query.order_by(AuditEventRow.seq).limit(_BATCH)
        async with db.read() as session:
            rows = (await session.execute(query)).scalars().all()
        for row in rows:
            yield row
        if len(rows) < _BATCH:
            return
        after = rows[-1].seq


async def verify_chain(
    db: Database,
    anchor: tuple[int, str] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
) -> ChainReport:
    """Recompute the whole chain under the handle's keys; name the first bad event.

    ``checkpoints`` are authentic ones read from outside the database (see
    ``audit_checkpoint.parse_checkpoints``); ``anchor`` is a (seq, hash) an operator recorded
    earlier (``head_seq`` / ``head_hash`` of a report). Both catch what a chain cannot show by
    itself, removal of its newest events. The rules are in ``pimbot.store.audit_verify``.
    """
    from pimbot.store.audit_retention import FloorProblem, read_floor

    try:
        floor = await read_floor(db)
    except FloorProblem as exc:
        async with db.read() as session:
            first = await session.scalar(select(func.min(AuditEventRow.seq)))
        return ChainReport(False, 0, first or 1, str(exc))
    verifier = ChainVerifier(db.audit_keyring, tuple(checkpoints), anchor, floor)
    async for event in stored_events(db, after=verifier.start):
        if not verifier.feed(event):  # the detail as stored text (audit_verify, rule 1)
            break
    return verifier.finish()


def inert_cell(value: Any) -> Any:
    """A CSV cell that cannot run as a spreadsheet formula (CWE-1236)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def event_record(row: AuditEventRow) -> dict[str, Any]:
    """One event as a plain mapping with every column (times as ISO 8601 UTC)."""
    return {
        "seq": row.seq,
        "at": format_time(row.at),
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "outcome": row.outcome,
        "detail": row.detail,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "key_id": row.key_id,
        "mac": row.mac,
    }


async def export_events(
    db: Database,
    fmt: Literal["jsonl", "csv"],
    out: TextIO,
    since: datetime | None = None,
) -> int:
    """Write events (all, or those at or after ``since``) as JSON lines or CSV; return count.

    In CSV, ``detail`` is a JSON object in one cell, and a cell that a spreadsheet would
    run as a formula (starting with = + - @ or a tab / carriage return) is prefixed with ``'``.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}; use jsonl or csv")
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    async for row in _all_events(db, since):
        record = event_record(row)
        if writer is None:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        else:
            record["detail"] = json.dumps(row.detail, ensure_ascii=False, sort_keys=True)
            writer.writerow({k: inert_cell(v) for k, v in record.items()})
        count += 1
    return count


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _mentions(value: str) -> ColumnElement[bool]:
    """Events naming ``value`` as actor, subject, or ``user`` / ``role`` in their detail."""
    text = cast(AuditEventRow.detail, String)
    quoted = _like_escape(json.dumps(value))
    patterns = [
        f'%"{key}":{space}{quoted}%' for key in ("user", "role") for space in ("", " ")
    ]
    return or_(
        AuditEventRow.actor == value,
        AuditEventRow.subject == value,
        *(text.like(pattern, escape="\\") for pattern in patterns),
    )


async def query_events(
    db: Database,
    *,
    subject: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[AuditEventRow]:
    """Events newest first; ``subject`` matches a person or role wherever the event names it."""
    query = select(AuditEventRow)
    if subject is not None:
        query = query.where(_mentions(subject))
    if actor is not None:
        query = query.where(AuditEventRow.actor == actor)
    if since is not None:
        query = query.where(AuditEventRow.at >= since)
    query = query.order_by(AuditEventRow.seq.desc()).limit(limit)
    async with db.read() as session:
        return list((await session.execute(query)).scalars().all())


__all__ = [
    "APPENDED_FLAG",
    "EXPORT_COLUMNS",
    "GENESIS_HASH",
    "ChainReport",
    "append_event",
    "event_hash",
    "event_record",
    "export_events",
    "format_time",
    "query_events",
    "verify_chain",
]
