"""The append-only, hash-chained audit log.

Every event is hashed over a canonical form that includes its ``seq`` and the previous event's
hash, so editing, deleting, reordering or forging an event breaks the chain at a point that
``verify_chain`` names. Events are appended inside the caller's write transaction, so an event
exists exactly when the change it describes committed.

``detail`` is stored in clear and exported to auditors: callers must never put a token,
secret, password or OTP code in it (ids, emails, role names, durations and reasons only).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from sqlalchemy import String, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow

GENESIS_HASH = "0" * 64
EXPORT_COLUMNS = (
    "seq", "at", "actor", "action", "subject", "outcome", "detail", "prev_hash", "hash",
)
_BATCH = 1000


@dataclass(frozen=True)
class ChainReport:
    """The result of ``verify_chain``: ``first_bad_seq`` names the first event that fails."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int = 0  # the newest event checked, and its hash: keep them outside the
    head_hash: str = GENESIS_HASH  # database to detect removal of the newest events later


def format_time(at: datetime) -> str:
    """ISO 8601 UTC with microseconds and a ``Z`` (the form that is hashed and exported)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime in the audit log; pimbot keeps aware UTC times only")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON form of one event."""
    canonical = {
        "seq": seq,
        "at": format_time(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "outcome": outcome,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_hash(row: AuditEventRow) -> str:
    return event_hash(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        outcome=row.outcome,
        detail=row.detail,
        prev_hash=row.prev_hash,
    )


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
) -> AuditEventRow:
    """Append one event to the chain inside the caller's write transaction.

    Takes the chain lock (a PostgreSQL advisory transaction lock; SQLite writers are already
    serial), so concurrent writers extend one chain. ``detail`` must be JSON-serialisable and
    must never contain secrets (tokens, passwords, OTP codes).
    """
    if at.tzinfo is None:
        raise ValueError("naive datetime in the audit log; pimbot keeps aware UTC times only")
    await db.lock_audit_chain(session)
    newest = select(AuditEventRow.seq, AuditEventRow.hash).order_by(AuditEventRow.seq.desc())
    last = (await session.execute(newest.limit(1))).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    body = dict(detail or {})
    at = at.astimezone(UTC)
    row = AuditEventRow(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
        detail=body,
        prev_hash=prev_hash,
        hash=event_hash(
            seq=seq, at=at, actor=actor, action=action, subject=subject,
            outcome=outcome, detail=body, prev_hash=prev_hash,
        ),
    )
    session.add(row)
    await session.flush()
    return row


async def _all_events(
    db: Database, since: datetime | None = None
) -> AsyncIterator[AuditEventRow]:
    """Every event in seq order, read in batches (constant memory on a long log)."""
    after = 0
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


def _check(row: AuditEventRow, expected_seq: int, prev_hash: str) -> str:
    """What is wrong with this event given its predecessor ('' when it is sound)."""
    if row.seq != expected_seq:
        missing = f"{expected_seq}" if row.seq == expected_seq + 1 else (
            f"{expected_seq}..{row.seq - 1}"
        )
        return f"event {row.seq} follows a gap: event {missing} is missing (deleted?)"
    if row.prev_hash != prev_hash:
        return f"event {row.seq} does not link to the event before it (deleted or reordered?)"
    if _row_hash(row) != row.hash:
        return f"event {row.seq} does not match its hash (edited or forged)"
    return ""


async def verify_chain(db: Database, anchor: tuple[int, str] | None = None) -> ChainReport:
    """Recompute the whole chain; name the first event that was edited, removed or moved.

    ``anchor`` is a (seq, hash) recorded earlier outside the database (``head_seq`` /
    ``head_hash`` of an earlier report): the chain must still hold that event unchanged,
    which catches the one thing a chain cannot show by itself, removal of its newest events.
    """
    checked = 0
    expected_seq, prev_hash = 1, GENESIS_HASH
    anchor_seen = anchor is None
    async for row in _all_events(db):
        problem = _check(row, expected_seq, prev_hash)
        if not problem and anchor is not None and row.seq == anchor[0]:
            anchor_seen = True
            if row.hash != anchor[1]:
                problem = f"event {row.seq} does not match the anchored hash"
        if problem:
            return ChainReport(False, checked, row.seq, problem, expected_seq - 1, prev_hash)
        checked += 1
        expected_seq, prev_hash = row.seq + 1, row.hash
    if not anchor_seen and anchor is not None:
        return ChainReport(False, checked, anchor[0],
                           f"event {anchor[0]} of the anchor is missing (newest events removed?)",
                           expected_seq - 1, prev_hash)
    return ChainReport(True, checked, head_seq=expected_seq - 1, head_hash=prev_hash)


def _inert(value: Any) -> Any:
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
            writer.writerow({k: _inert(v) for k, v in record.items()})
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
