"""Verifying the audit chain, one event at a time, against its keys and checkpoints.

Rules, checked in ``seq`` order; the first one broken names the first bad event:
1. seqs run 1, 2, 3… without a gap; each event links to the hash before it (``prev_hash``)
   and matches its own hash (an edit, a deletion or a move breaks one of these);
2. an event with a MAC under a configured key must match it (an edit whose hashes were
   recomputed, with plain SHA-256 or a guessed key under the real key id, fails here);
3. an event without a MAC is allowed only before the chain was keyed: never after an event
   with a MAC, never at or after a checkpoint's ``keyed_from`` (stripping MACs fails here);
4. an event is *vouched for* by its own valid MAC, by any later valid MAC (each hash commits
   to everything before it), or by a checkpoint naming it; events under a key id that is not
   configured, or from before the keys, must be vouched for by the end, else they fail
   (a chain rewritten under another key, or a wrong ``PIMBOT_AUDIT_KEY``, fails here);
5. every authentic checkpoint must name an event that is still there, unchanged (removal of
   the newest events, or a chain re-written from some point on, fails here);
6. a retention floor must be followed by the ``audit.purged`` event that names it (below).
An ``anchor`` (seq, hash) given by an operator must be present and unchanged too.

An event's ``detail`` is hashed as parsed, so rule 1 also requires the stored text to be
exactly what pimbot writes (``json.dumps`` of the object, as SQLAlchemy's JSON type stores
it): a key written twice keeps the hash (Python's json keeps the last value) while SQLite's
``->>`` reads the first, which would hide the event from ``audit PERSON``.

After a retention purge (``pimbot.store.audit_retention``) the chain starts after its
*floor*, an authentic record naming the last purged event: rule 1 then starts at the
floor's seq + 1 and hash instead of 1 and the genesis hash, checkpoints naming purged events
are passed over, and the floor's ``keyed_from`` and MAC count as a checkpoint's. A floor
counts only with the ``audit.purged`` event pimbot wrote beside it (in the same transaction,
so after it in the chain) still there and naming it (rule 6): a floor put there by hand, such
as a checkpoint line copied into the database, hides nothing. A floor stored before floors had
a MAC of their own (``legacy``: sealed as a checkpoint, so any checkpoint line is one) needs
more: its event's own MAC under a configured key. Being vouched for is not enough there, as
anyone can MAC an event under a key of their own and pimbot's next event vouches for it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select

from pimbot.store.audit_checkpoint import ChainHead, Checkpoint
from pimbot.store.audit_crypto import GENESIS_HASH, AuditKeyring, event_hash, macs_match
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow

PURGE_ACTION = "audit.purged"
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as stored, its ``detail`` as the text in the database."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    outcome: str
    detail_text: str
    prev_hash: str
    hash: str
    key_id: str | None
    mac: str | None


_STORED = (AuditEventRow.seq, AuditEventRow.at, AuditEventRow.actor, AuditEventRow.action,
           AuditEventRow.subject, AuditEventRow.outcome, cast(AuditEventRow.detail, Text),
           AuditEventRow.prev_hash, AuditEventRow.hash, AuditEventRow.key_id, AuditEventRow.mac)


async def stored_events(db: Database, after: int = 0) -> AsyncIterator[StoredEvent]:
    """Every event after seq ``after``, in seq order, in batches (constant memory); the
    detail is read as text (``CAST``), so what is checked is what ``->>`` reads."""
    while True:
        query = select(*_STORED).where(AuditEventRow.seq > after)
        async with db.read() as session:
            rows = (await session.execute(query.order_by(AuditEventRow.seq).limit(_BATCH))).all()
        for row in rows:
            yield StoredEvent(*row)
        if len(rows) < _BATCH:
            return
        after = rows[-1][0]


def written_detail(text: str | None) -> dict[str, Any] | None:
    """The detail ``text`` holds, when it is exactly what pimbot writes; None otherwise (a
    repeated key, other spacing or escapes, not JSON, not an object)."""
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) and json.dumps(value) == text else None


@dataclass(frozen=True)
class Floor:
    """A retention floor whose MAC is good (``audit_retention``): the last purged event, as
    a checkpoint would name it; ``legacy`` when sealed as a checkpoint (before floors had a
    MAC of their own)."""

    point: Checkpoint
    legacy: bool = False


def purge_names(detail: Mapping[str, Any], floor: Checkpoint) -> bool:
    """Whether an ``audit.purged`` event's detail names ``floor``: the last purged seq, and
    its hash (events written before floors had a MAC of their own carry the seq only)."""
    seq, named_hash = detail.get("through_seq"), detail.get("through_hash")
    return (isinstance(seq, int) and not isinstance(seq, bool) and seq == floor.head_seq
            and named_hash in (None, floor.head_hash))


@dataclass(frozen=True)
class ChainReport:
    """The result of ``verify_chain``: ``first_bad_seq`` names the first event that fails."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int = 0  # the newest event checked, and its hash: keep them outside the
    head_hash: str = GENESIS_HASH  # database to detect removal of the newest events later
    checkpoints: int = 0  # authentic checkpoints compared with the chain


class ChainVerifier:
    """Feed every event in seq order (``feed`` says whether to go on), then ``finish``."""

    def __init__(
        self,
        keyring: AuditKeyring,
        checkpoints: tuple[Checkpoint, ...] = (),
        anchor: tuple[int, str] | None = None,
        sealed: Floor | None = None,
    ) -> None:
        self.keyring = keyring
        self.anchor = anchor
        self.sealed = sealed
        self._purge_seen = sealed is None
        floor = sealed.point if sealed is not None else None
        self.start = start = floor.head_seq if floor is not None else 0  # the last purged
        checkpoints = tuple(c for c in checkpoints if c.head_seq > start)  # purged: passed over
        if anchor is not None and anchor[0] <= start:
            anchor = self.anchor = None
        self.checkpoints = checkpoints
        self._at_seq: dict[int, list[Checkpoint]] = {}
        for checkpoint in checkpoints:
            self._at_seq.setdefault(checkpoint.head_seq, []).append(checkpoint)
        self._keyed_from = min((c.keyed_from for c in (*checkpoints, *(
            (floor,) if floor is not None else ()))), default=None)
        self._checked = 0
        self._expected_seq, self._prev_hash = start + 1, (
            floor.head_hash if floor is not None else GENESIS_HASH)
        self._keyed_seen = floor is not None and floor.head_mac is not None
        self._anchor_seen = anchor is None
        self._unvouched: tuple[int, str | None] | None = None  # (first seq, its key id)
        self._failure: ChainReport | None = None

    def feed(self, row: StoredEvent) -> bool:
        detail = written_detail(row.detail_text)
        problem = (self._structure(row, detail) or self._mac(row)
                   or self._against_checkpoints(row) or self._against_anchor(row))
        if problem:
            first_bad, text = problem
            self._failure = self._report(False, first_bad, text)
            return False
        self._note_purge(row, detail)
        self._checked += 1
        self._expected_seq, self._prev_hash = row.seq + 1, row.hash
        return True

    def finish(self) -> ChainReport:
        if self._failure is not None:
            return self._failure
        head = self._expected_seq - 1
        if not self._purge_seen and self.sealed is not None:
            return self._report(False, self.start, self._floor_problem(self.sealed))
        if not self._anchor_seen and self.anchor is not None:
            return self._report(False, self.anchor[0], f"event {self.anchor[0]} of the anchor "
                                "is missing (newest events removed?)")
        beyond = [c for c in self.checkpoints if c.head_seq > head]
        if beyond:
            last = max(beyond, key=lambda c: c.head_seq)
            return self._report(False, head + 1, (
                f"the log ends at event {head}, but the checkpoint of {last.at} names event "
                f"{last.head_seq}: events {head + 1}..{last.head_seq} were removed (or the "
                "database was restored from an older backup)"))
        if self._unvouched is not None:
            start, key_id = self._unvouched
            return self._report(False, start, self._unvouched_problem(start, head, key_id))
        return self._report(True, None, "")

    def _report(self, ok: bool, first_bad: int | None, problem: str) -> ChainReport:
        return ChainReport(ok, self._checked, first_bad, problem, self._expected_seq - 1,
                           self._prev_hash, len(self.checkpoints))

    def _structure(self, row: StoredEvent, detail: dict[str, Any] | None
                   ) -> tuple[int, str] | None:
        expected = self._expected_seq
        if row.seq != expected:
            missing = f"{expected}" if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
            return row.seq, f"event {row.seq} follows a gap: event {missing} is missing (deleted?)"
        if row.prev_hash != self._prev_hash:
            return row.seq, (f"event {row.seq} does not link to the event before it "
                             "(deleted or reordered?)")
        if detail is None:
            return row.seq, (f"event {row.seq}: its detail is not the JSON pimbot wrote (a key "
                             "repeated or the text rewritten by hand, which can hide the "
                             "event from audit queries)")
        recomputed = event_hash(seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                                subject=row.subject, outcome=row.outcome, detail=detail,
                                prev_hash=row.prev_hash)
        if recomputed != row.hash:
            return row.seq, f"event {row.seq} does not match its hash (edited or forged)"
        return None

    def _note_purge(self, row: StoredEvent, detail: dict[str, Any] | None) -> None:
        """Rule 6: is this the ``audit.purged`` event of the floor (its MAC already checked)?"""
        sealed = self.sealed
        if (self._purge_seen or sealed is None or detail is None or row.action != PURGE_ACTION
                or not purge_names(detail, sealed.point)):
            return
        if sealed.legacy and self.keyring.find(row.key_id) is None:
            return  # MACed under a key nobody configured: maybe not by pimbot
        self._purge_seen = True

    @staticmethod
    def _floor_problem(sealed: Floor) -> str:
        seq = sealed.point.head_seq
        text = (f"the retention floor names event {seq}, but no audit.purged event after it "
                "names the floor: pimbot did not purge there (a checkpoint line copied into "
                f"the database as the floor?), so events 1..{seq} were deleted by hand")
        if sealed.legacy:
            text += ("; if this floor is from an earlier pimbot and its audit.purged event is "
                     "MACed under a retired key, put that key back in "
                     "PIMBOT_AUDIT_KEY_PREVIOUS until a purge pass re-seals the floor")
        return text

    def _mac(self, row: StoredEvent) -> tuple[int, str] | None:
        if row.mac is None:
            if self._keyed_seen:
                return row.seq, (f"event {row.seq} carries no MAC although the events before "
                                 "it do (rewritten without the audit key?)")
            if self._keyed_from is not None and row.seq >= self._keyed_from:
                return row.seq, (f"event {row.seq} carries no MAC, but the checkpoints say "
                                 f"every event from {self._keyed_from} on has one (MACs "
                                 "stripped and the chain recomputed?)")
            self._unvouched = self._unvouched or (row.seq, None)
            return None
        self._keyed_seen = True
        key = self.keyring.find(row.key_id)
        if key is None:
            self._unvouched = self._unvouched or (row.seq, row.key_id)
            return None
        if not macs_match(key.event_mac(row.hash), row.mac):
            text = (f"event {row.seq} does not match its MAC under audit key {row.key_id} "
                    "(edited or forged, and the hashes recomputed without the key?)")
            if self._unvouched is None:
                return row.seq, text
            start, key_id = self._unvouched
            return start, f"{self._unvouched_problem(start, row.seq - 1, key_id)}; {text}"
        self._unvouched = None
        return None

    def _against_checkpoints(self, row: StoredEvent) -> tuple[int, str] | None:
        head = ChainHead(row.seq, row.hash, row.mac)
        for checkpoint in self._at_seq.get(row.seq, ()):
            if not checkpoint.matches(head):
                text = (f"event {row.seq} differs from the checkpoint of {checkpoint.at} "
                        "(the chain was rewritten up to it)")
                if self._unvouched is None:
                    return row.seq, text
                start, key_id = self._unvouched
                return start, f"{self._unvouched_problem(start, row.seq, key_id)}; {text}"
            self._unvouched = None
        return None

    def _against_anchor(self, row: StoredEvent) -> tuple[int, str] | None:
        if self.anchor is None or row.seq != self.anchor[0]:
            return None
        self._anchor_seen = True
        if row.hash != self.anchor[1]:
            return row.seq, f"event {row.seq} does not match the anchored hash"
        return None

    def _unvouched_problem(self, start: int, head: int, key_id: str | None) -> str:
        one = start == head
        span, them = (f"event {start}", "it") if one else (f"events {start}..{head}", "them")
        if key_id is None:
            return (f"{span} {'carries' if one else 'carry'} no MAC (written before the audit "
                    f"chain was keyed) and no checkpoint vouches for {them}: "
                    "`pimbot db upgrade` seals the older events with one")
        return (f"{span} {'is' if one else 'are'} MACed under audit key {key_id}, which is "
                "neither PIMBOT_AUDIT_KEY nor in PIMBOT_AUDIT_KEY_PREVIOUS (a wrong key, or a "
                f"chain rewritten under another key?), and nothing later vouches for {them}")
