"""Many audit events appended to the chain in one statement (a policy apply's thousands).

The same chain as ``audit_log.append_event`` (same lock, same hash and MAC, seq following
the head, the same two prepared statements), but the head is read once and the rows go in
as one executemany, so the cost is a few round trips whatever the number of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.store.audit_crypto import GENESIS_HASH, event_hash
from pimbot.store.audit_log import APPENDED_FLAG, CHAIN_HEAD, INSERT_EVENT
from pimbot.store.database import Database
from pimbot.store.prepared import run, run_many


@dataclass(frozen=True)
class NewEvent:
    """One event to append; ``detail`` is stored in clear and must never hold a secret."""

    actor: str
    action: str
    subject: str = ""
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)


async def append_events(db: Database, session: AsyncSession, at: datetime,
                        events: Sequence[NewEvent]) -> int:
    """Append ``events`` in order, all at ``at``, inside the caller's write transaction;
    returns the seq of the last one (0 when there were none)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime in the audit log; pimbot keeps aware UTC times only")
    if not events:
        return 0
    await db.lock_audit_chain(session)
    last = (await run(session, CHAIN_HEAD)).first()  # pending ORM changes are flushed first
    seq, prev_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
    at = at.astimezone(UTC)
    key = db.audit_keyring.current
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        body = dict(event.detail)
        digest = event_hash(seq=seq, at=at, actor=event.actor, action=event.action,
                            subject=event.subject, outcome=event.outcome, detail=body,
                            prev_hash=prev_hash)
        rows.append({"seq": seq, "at": at, "actor": event.actor, "action": event.action,
                     "subject": event.subject, "outcome": event.outcome, "detail": body,
                     "prev_hash": prev_hash, "hash": digest, "key_id": key.key_id,
                     "mac": key.event_mac(digest), "once_key": None})
        prev_hash = digest
    await run_many(session, INSERT_EVENT, rows)
    session.info[APPENDED_FLAG] = True
    return seq
