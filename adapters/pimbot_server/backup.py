"""``pimbot db backup FILE``: a consistent copy of a live SQLite database.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the database page by
page while pimbot keeps running (WAL mode: readers and the one writer go on), into a new
file, which is then checked with ``PRAGMA integrity_check``. PostgreSQL: pimbot does not dump
it itself; the command prints the ``pg_dump`` line to use (the password is never printed).

Keys are not in the database, by design: back up ``PIMBOT_SECRET_KEY`` (or the development
key file beside the SQLite file) and ``PIMBOT_AUDIT_KEY`` separately, in a secret store, and
the audit checkpoints where they are kept.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from pimbot.store.database import Database
from pimbot_server.errors import CommandFailed, UsageError, check_writable
from pimbot_server.settings import Settings


async def backup(target: str | None, settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        if not db.is_sqlite:
            print(pg_dump_guidance(settings.database_url))
            return 1
        source = db.sqlite_path
    finally:
        await db.dispose()
    if source is None:
        raise CommandFailed("an in-memory SQLite database has nothing to back up")
    if not target:
        raise UsageError("say where the copy goes (try: pimbot db backup FILE)")
    destination = Path(target)
    pages = await asyncio.to_thread(copy_sqlite, source, destination)
    print(f"backed up {source} to {destination} ({pages} pages, integrity ok)")
    print("keys are not in the database: keep PIMBOT_SECRET_KEY (or the development key file "
          "beside it) and PIMBOT_AUDIT_KEY in your secret store", file=sys.stderr)
    return 0


def copy_sqlite(source: Path, destination: Path) -> int:
    """Copy with the online backup API; returns the copy's page count once it checks out."""
    if not source.exists():
        raise CommandFailed(f"there is no database at {source}")
    if destination.exists():
        raise CommandFailed(f"{destination} exists; pimbot never overwrites a backup")
    check_writable(destination)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        try:
            dst = sqlite3.connect(destination)
        except sqlite3.OperationalError as exc:
            raise CommandFailed(f"cannot write {destination}: {exc}") from None
        try:
            src.backup(dst, pages=1024)
            check = dst.execute("PRAGMA integrity_check").fetchone()
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    if not check or check[0] != "ok":
        destination.unlink(missing_ok=True)
        raise CommandFailed(f"the copy did not pass the integrity check: {check}")
    destination.chmod(0o600)
    return pages


def pg_dump_guidance(url: str) -> str:
    parsed = make_url(url)
    parts = ["pg_dump", "--format=custom", "--no-owner"]
    if parsed.host:
        parts.append(f"--host={parsed.host}")
    if parsed.port:
        parts.append(f"--port={parsed.port}")
    if parsed.username:
        parts.append(f"--username={parsed.username}")
    parts += ["--file=pimbot-$(date +%Y%m%d).dump", parsed.database or "pimbot"]
    return ("pimbot does not dump PostgreSQL itself; pg_dump takes a consistent snapshot while "
            "pimbot runs (the password comes from PGPASSWORD or ~/.pgpass):\n  "
            + " ".join(parts) + "\nrestore into an empty database with pg_restore --no-owner "
            "--dbname=..., then `pimbot db upgrade`; see docs/OPERATIONS.md")
