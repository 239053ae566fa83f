"""``pimbot audit verify | export | rotate-key``, and the checkpoints other commands write."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO

from pimbot.domain.errors import PimError
from pimbot.ports import SystemClock
from pimbot.store.audit_checkpoint import CheckpointSet, parse_checkpoints
from pimbot.store.audit_crypto import AuditKey, AuditKeyError, load_audit_key
from pimbot.store.audit_log import ChainReport, append_event, verify_chain
from pimbot.store.audit_retention import FloorProblem, purge_before, reseal_floor
from pimbot.store.database import Database
from pimbot_server.checkpoints import (
    CheckpointStore,
    CheckpointStoreError,
    checkpoint_store,
    failure_reason,
    write_checkpoint,
)
from pimbot_server.errors import CommandFailed, UsageError, cannot_write, check_writable
from pimbot_server.settings import Settings, SettingsError, checkpoint_destination
from pimbot_server.storage import audit_keyring, open_database

_READ_ERRORS = (OSError, TimeoutError, CheckpointStoreError, ValueError)


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()  # a closed pipe raises here, before "exported N" claims otherwise
        return
    try:
        handle = Path(path).open("w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise cannot_write(path, exc) from None
    with handle:
        yield handle


def _check_output(path: str | None) -> None:
    """``--output FILE`` that cannot be written is said before the database is read."""
    if path is not None and path != "-":
        check_writable(path)


def when_argument(option: str, text: str, now: datetime) -> datetime:
    """``--since`` / ``--before``: a WHEN; one that is not is wrong usage."""
    from pimbot.domain.times import resolve_when

    try:
        return resolve_when(text, now)
    except PimError as exc:
        raise UsageError(f"{option}: {exc.message} (try: {option} {exc.hint or '14:30'})"
                         ) from None


def parse_anchor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ValueError("--anchor must be SEQ:HASH as printed by an earlier verify")
    return int(seq), digest.lower()


async def read_checkpoints(store: CheckpointStore | None, db: Database
                           ) -> tuple[CheckpointSet, bool]:
    """The checkpoints a store holds, sorted by what the keys say; and whether it had any."""
    if store is None:
        return CheckpointSet(), False
    try:
        lines = await store.read_lines()
    except _READ_ERRORS as exc:
        raise CommandFailed(f"cannot read the audit checkpoints at {store.where}: "
                            f"{failure_reason(exc)}"
                            ) from None
    return parse_checkpoints(lines or [], db.audit_keyring), lines is not None


async def audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        anchor = parse_anchor(args.anchor)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    source = checkpoint_destination(args.checkpoint or "")  # https:// (or loopback) only
    db = await open_database(settings)
    try:
        store = None if args.no_checkpoint else checkpoint_store(settings, db, source)
        found, present = await read_checkpoints(store, db)
        report = await verify_chain(db, anchor, found.authentic)
    finally:
        await db.dispose()
    where = store.where if store is not None else ""
    if not report.ok:
        print(f"audit log broken at event {report.first_bad_seq}: {report.problem}",
              file=sys.stderr)
    for damage in found.damaged:
        print(f"audit checkpoints at {where} broken: {damage}", file=sys.stderr)
    if not report.ok or found.damaged:
        return 1
    missing = _missing_checkpoint(report, found, present, where, anchor is not None)
    if store is not None and missing:
        print(f"audit log not verified: {missing}", file=sys.stderr)
        return 1
    print(f"audit log intact: {report.checked} events; head {report.head_seq}:"
          f"{report.head_hash}")
    print(_checkpoint_summary(found, where, args.no_checkpoint))
    return 0


def _missing_checkpoint(report: ChainReport, found: CheckpointSet, present: bool,
                        where: str, anchored: bool) -> str:
    """Why no checkpoint vouches for the head ('' when one does, or none is needed)."""
    if found.authentic or report.checked == 0 or anchored:
        return ""
    if found.unknown_key:
        ids = ", ".join(sorted({c.key_id for c in found.unknown_key}))
        return (f"the checkpoints at {where} are MACed under audit key {ids}, which is not "
                "configured (a wrong PIMBOT_AUDIT_KEY? list earlier keys in "
                "PIMBOT_AUDIT_KEY_PREVIOUS)")
    state = "no checkpoint" if present else "nothing"
    return (f"{state} at {where}, so removal of the newest events cannot be ruled out "
            "(`pimbot run` writes checkpoints there: set PIMBOT_AUDIT_CHECKPOINT to where "
            "they go, or pass --checkpoint FILE, or --no-checkpoint to check the chain only)")


def _checkpoint_summary(found: CheckpointSet, where: str, skipped: bool) -> str:
    if skipped:
        return ("checkpoints not read (--no-checkpoint): removal of the newest events "
                "would not show")
    newest = found.newest
    if newest is None:
        return "no checkpoint yet (the log is empty)"
    text = (f"checked against {len(found.authentic)} checkpoint(s) at {where}; the newest "
            f"names event {newest.head_seq} ({newest.at})")
    if found.unknown_key:
        text += f"; {len(found.unknown_key)} under a key not configured were skipped"
    return text


async def audit_export(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.store.audit_log import export_events

    since = when_argument("--since", args.since, SystemClock().now()) if args.since else None
    fmt: Literal["jsonl", "csv"] = "csv" if args.format == "csv" else "jsonl"
    _check_output(args.output)
    db = await open_database(settings, keys=False)
    try:
        with _output(args.output) as out:
            count = await export_events(db, fmt, out, since)
    finally:
        await db.dispose()
    print(f"exported {count} events", file=sys.stderr)
    return 0


def read_new_key(value: str) -> str:
    """``--new-key``: ``-`` reads it from stdin (preferred: it stays out of ``ps``)."""
    if value != "-":
        print("note: a key given on the command line shows in `ps` and shell history; "
              "prefer `--new-key -` and pipe it in", file=sys.stderr)
        return value
    return sys.stdin.readline()


async def audit_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    try:
        new = load_audit_key(read_new_key(args.new_key), "--new-key")
    except AuditKeyError:
        raise UsageError(
            "--new-key is not 32 random bytes in URL-safe base64 (try: pimbot keygen)"
        ) from None
    db = await open_database(settings)
    try:
        old = await hand_over(db, checkpoint_store(settings, db), new)
    finally:
        await db.dispose()
    print(f"audit key rotated: events from now on are MACed under key {new.key_id} "
          f"(was {old.key_id})")
    print("now set PIMBOT_AUDIT_KEY to the new key everywhere pimbot runs, and restart; keep "
          "the old one in PIMBOT_AUDIT_KEY_PREVIOUS to go on checking older events one by one "
          "(leave it out if it leaked: newer events and checkpoints still vouch for them)")
    return 0


async def hand_over(db: Database, store: CheckpointStore | None, new: AuditKey) -> AuditKey:
    """Verify the chain under the current keys, then record ``audit.key_rotated`` under
    ``new`` and checkpoint it there: the new key vouches only for a chain the old one
    proved. Returns the old key; raises ``CommandFailed`` when the chain is broken."""
    old = db.audit_keyring.current
    if new.key_id == old.key_id:
        raise CommandFailed("the new audit key is the current one")
    found, _ = await read_checkpoints(store, db)
    report = await verify_chain(db, None, found.authentic)
    if not report.ok or found.damaged:
        why = report.problem if not report.ok else found.damaged[0]
        raise CommandFailed(f"audit key not rotated: the audit log does not verify "
                            f"({why}); run `pimbot audit verify`")
    db.audit_keyring = db.audit_keyring.rotated_to(new)
    clock = SystemClock()
    async with db.transaction() as session:
        await append_event(db, session, at=clock.now(), actor="pimbot",
                           action="audit.key_rotated",
                           detail={"from_key": old.key_id, "to_key": new.key_id})
    await reseal_floor(db, clock.now())  # a retention floor: under the new key from now on
    if store is not None:
        await write_checkpoint(db, store, clock)
    return old


async def audit_purge(args: argparse.Namespace, settings: Settings) -> int:
    """``audit purge [--before WHEN]``: what the retention pass of ``pimbot run`` does."""
    from datetime import timedelta

    now = SystemClock().now()
    if args.before:
        cutoff = when_argument("--before", args.before, now)
    elif settings.audit_retention_days is None:
        print("PIMBOT_AUDIT_RETENTION is 'forever': nothing purged", file=sys.stderr)
        return 0
    else:
        cutoff = now - timedelta(days=settings.audit_retention_days)
    if cutoff > now:
        raise UsageError(f"--before {args.before} is in the future; nothing newer than now "
                         "can be purged (try: --before 2026-01-01)")
    db = await open_database(settings)
    try:
        purge = await purge_before(db, cutoff, now)
        await checkpoint_after_change(db, settings)
    except FloorProblem as exc:
        raise CommandFailed(f"nothing purged: {exc}") from None
    finally:
        await db.dispose()
    print(f"purged {purge.deleted} event(s) before {cutoff.isoformat()}; the log now starts "
          f"after event {purge.through_seq}")
    return 0


async def checkpoint_after_change(db: Database, settings: Settings) -> None:
    """After a command appended events (or sealed an upgrade), checkpoint the new head.
    A destination that is down only warns: the next ``pimbot run`` writes one too."""
    store = checkpoint_store(settings, db)
    if store is None:
        return
    try:
        await write_checkpoint(db, store, SystemClock())
    except (OSError, TimeoutError, CheckpointStoreError) as exc:
        print(f"warning: audit checkpoint not written to {store.where}: {failure_reason(exc)}",
              file=sys.stderr)


async def seal_upgrade(db: Database, settings: Settings) -> None:
    """``db upgrade``: checkpoint the head under the audit key, sealing events written
    before the chain was keyed. Without a key (PostgreSQL, no key set) it says so."""
    try:
        db.audit_keyring = audit_keyring(settings, db)
    except SettingsError as exc:
        print(f"note: audit checkpoint not written: {exc}", file=sys.stderr)
        return
    await checkpoint_after_change(db, settings)


COMMANDS = {
    "verify": audit_verify,
    "purge": audit_purge,
    "export": audit_export,
    "rotate-key": audit_rotate_key,
}


async def review_export(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.store.review_export import UnknownReview, export_review

    fmt: Literal["jsonl", "csv"] = "csv" if args.format == "csv" else "jsonl"
    _check_output(args.output)
    db = await open_database(settings)
    try:
        with _output(args.output) as out:
            count = await export_review(db, args.id, fmt, out)
    except UnknownReview:
        print(f"there is no access review '{args.id}' (its id was shown when it started)",
              file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    print(f"exported {count} review items", file=sys.stderr)
    return 0
