"""What someone with write access to the database (and nothing else) can do to the audit log.

Each helper rewrites ``audit_events`` directly, the way such an attacker would, and recomputes
whatever they can recompute: the SHA-256 chain (public), and MACs under a key of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select, text

from pimbot.store.audit_crypto import AuditKey, event_hash
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, SettingRow

FLOOR_SETTING = "audit_floor"  # the ``settings`` row an attacker finds the floor in


@dataclass
class Attacker:
    db: Database  # a plain handle on the same database (its own key is of no use to anyone)
    key: AuditKey | None = None  # a key of their own, to MAC a rewritten chain with
    fake_key_id: str | None = None  # claim the real key id while MACing with ``key``
    strip_macs: bool = False
    touched: list[int] = field(default_factory=list)

    async def rewrite(self, change: Callable[[dict[int, AuditEventRow]], None],
                      rechain_from: int) -> None:
        """Apply ``change`` to the rows, then recompute every hash from ``rechain_from`` on
        (and the MACs, as far as this attacker can)."""
        async with self.db.transaction() as session:
            rows = {r.seq: r for r in (await session.execute(
                select(AuditEventRow).order_by(AuditEventRow.seq))).scalars()}
            change(rows)
            prev = rows[rechain_from - 1].hash if rechain_from > 1 else "0" * 64
            for seq in sorted(s for s in rows if s >= rechain_from):
                row = rows[seq]
                row.prev_hash = prev
                row.hash = event_hash(seq=row.seq, at=row.at, actor=row.actor,
                                      action=row.action, subject=row.subject,
                                      outcome=row.outcome, detail=dict(row.detail),
                                      prev_hash=prev)
                self._mac(row)
                prev = row.hash
                self.touched.append(seq)

    def _mac(self, row: AuditEventRow) -> None:
        if self.strip_macs:
            row.key_id, row.mac = None, None
        elif self.key is not None:
            row.key_id = self.fake_key_id or self.key.key_id
            forger = AuditKey(self.key.secret, row.key_id)
            row.mac = forger.event_mac(row.hash)

    async def edit_actor(self, seq: int, actor: str = "mallory@example.com") -> None:
        def change(rows: dict[int, AuditEventRow]) -> None:
            rows[seq].actor = actor
        await self.rewrite(change, rechain_from=seq)

    async def swap(self, first: int, second: int) -> None:
        """Reorder: the contents of two events trade places, and the chain is recomputed."""
        def change(rows: dict[int, AuditEventRow]) -> None:
            a, b = rows[first], rows[second]
            for name in ("at", "actor", "action", "subject", "outcome", "detail"):
                value_a, value_b = getattr(a, name), getattr(b, name)
                setattr(a, name, value_b)
                setattr(b, name, value_a)
        await self.rewrite(change, rechain_from=min(first, second))

    async def delete_from(self, seq: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(AuditEventRow).where(AuditEventRow.seq >= seq))

    async def plant_floor(self, line: str) -> int:
        """Store ``line`` (a checkpoint line, readable in the file or from the receiver's
        GET) as the retention floor, and delete every event up to the one it names."""
        floor = json.loads(line)
        async with self.db.transaction() as session:
            row = await session.get(SettingRow, FLOOR_SETTING)
            if row is None:
                session.add(SettingRow(key=FLOOR_SETTING, value=floor))
            else:
                row.value = floor
            await session.execute(delete(AuditEventRow).where(
                AuditEventRow.seq <= floor["head_seq"]))
        return int(floor["head_seq"])

    async def repeat_key(self, seq: int, key: str, decoy: str) -> None:
        """Rewrite event ``seq``'s stored detail so ``key`` appears twice, ``decoy`` first:
        Python's json keeps the last value (the hash is unchanged), SQLite's ``->>`` reads
        the first (``audit PERSON`` looks for the decoy)."""
        async with self.db.transaction() as session:
            row = await session.get(AuditEventRow, seq)
            assert row is not None and key in row.detail
            rest = json.dumps(row.detail)[1:]
            stored = f"{{{json.dumps(key)}: {json.dumps(decoy)}, {rest}"
            await session.execute(text("UPDATE audit_events SET detail = :detail "
                                       "WHERE seq = :seq"), {"detail": stored, "seq": seq})

    async def forge_event(self, seq: int, prev_hash: str, action: str,
                          detail: dict[str, object]) -> None:
        """Insert event ``seq`` linked to ``prev_hash``, MACed under this attacker's own key
        (a key id pimbot does not know): it stands unvouched until pimbot appends after it."""
        assert self.key is not None
        at = datetime.now(UTC)
        digest = event_hash(seq=seq, at=at, actor="pimbot", action=action, subject="audit",
                            outcome="ok", detail=detail, prev_hash=prev_hash)
        async with self.db.transaction() as session:
            session.add(AuditEventRow(seq=seq, at=at, actor="pimbot", action=action,
                                      subject="audit", outcome="ok", detail=detail,
                                      prev_hash=prev_hash, hash=digest, key_id=self.key.key_id,
                                      mac=self.key.event_mac(digest)))
