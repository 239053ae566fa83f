"""The database, the TOTP sealing key and the audit keys, as the settings describe them."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from pimbot.secretbox import SecretBox, SecretKeyError, dev_key_file, load_key
from pimbot.store.audit_crypto import (
    AuditKey,
    AuditKeyError,
    AuditKeyring,
    derive_audit_key,
    load_audit_key,
    load_audit_keys,
)
from pimbot.store.database import Database
from pimbot_server.database_urls import redacted
from pimbot_server.errors import CommandFailed
from pimbot_server.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def secret_key(settings: Settings, db: Database) -> bytes:
    """``PIMBOT_SECRET_KEY``; a dev key file beside SQLite when none is configured."""
    if settings.secret_key:
        try:
            return load_key(settings.secret_key)
        except SecretKeyError as exc:
            raise SettingsError(str(exc), "pimbot keygen") from None
    if not db.is_sqlite:
        raise SettingsError(
            "PIMBOT_SECRET_KEY is not set, and on PostgreSQL pimbot will not start without it",
            "run `pimbot keygen` and set PIMBOT_SECRET_KEY to what it prints",
        )
    path = db.sqlite_path
    if path is None:
        log.warning("PIMBOT_SECRET_KEY is not set: using a throw-away key for in-memory SQLite")
        return secrets.token_bytes(32)
    key, created = dev_key_file(path.resolve())
    if created:
        log.warning(
            "PIMBOT_SECRET_KEY is not set: created the development key file beside %s "
            "(set PIMBOT_SECRET_KEY in production; `pimbot keygen` prints one)",
            path,
        )
    else:
        # Every command reads the key; only ``pimbot run`` says which one it serves with
        # (a one-off command's output is its own answer or its one error line).
        log.debug("PIMBOT_SECRET_KEY is not set: using the development key file beside %s", path)
    return key


def secret_box(settings: Settings, db: Database, key: bytes | None = None) -> SecretBox:
    """The box that seals TOTP secrets (under ``key``, else the configured secret key)."""
    return SecretBox(key if key is not None else secret_key(settings, db))


def current_audit_key(settings: Settings, db: Database, secret: bytes | None = None) -> AuditKey:
    """``PIMBOT_AUDIT_KEY``, else the key derived from the secret key (``secret`` if given)."""
    if settings.audit_key:
        try:
            return load_audit_key(settings.audit_key)
        except AuditKeyError as exc:
            raise SettingsError(str(exc), "pimbot keygen") from None
    if settings.secret_key is None and not db.is_sqlite:
        raise SettingsError(
            "neither PIMBOT_AUDIT_KEY nor PIMBOT_SECRET_KEY is set, so the audit chain has no "
            "key", "run `pimbot keygen` and set PIMBOT_SECRET_KEY (or PIMBOT_AUDIT_KEY)",
        )
    return derive_audit_key(secret if secret is not None else secret_key(settings, db))


def audit_keyring(settings: Settings, db: Database, secret: bytes | None = None) -> AuditKeyring:
    """The current audit key and the previous ones (``PIMBOT_AUDIT_KEY_PREVIOUS``)."""
    current = current_audit_key(settings, db, secret)
    try:
        previous = load_audit_keys(settings.audit_key_previous, "PIMBOT_AUDIT_KEY_PREVIOUS")
    except AuditKeyError as exc:
        raise SettingsError(str(exc), "list the earlier PIMBOT_AUDIT_KEY values") from None
    return AuditKeyring(current, tuple(k for k in previous if k.key_id != current.key_id))


async def open_database(settings: Settings, *, keys: bool = True) -> Database:
    """The migrated database, with the audit keys (``keys=False``: for reading only)."""
    db = Database(settings.database_url)
    try:
        if keys:
            db.audit_keyring = audit_keyring(settings, db)
        async with reaching(db), db.startup_lock():  # never beside a replica's migration
            await db.upgrade()
    except BaseException:
        await db.dispose()
        raise
    return db


# SQLSTATE classes of a database that answered but would not let pimbot in: 08 connection
# exception, 28 invalid authorization, 3D000 no such database.
_REFUSED_STATES = ("08", "28", "3D000")


@contextlib.asynccontextmanager
async def reaching(db: Database) -> AsyncIterator[None]:
    """Around the first contact with the database: a refused connection, an unknown host, a
    missing directory or a refused login raise one line naming the (redacted) URL."""
    where = (f"the SQLite database {db.sqlite_path}" if db.sqlite_path is not None
             else f"the database at {redacted(db.url)}")
    try:
        yield
    except OSError as exc:  # refused, unknown host, timed out, no such directory
        raise CommandFailed(f"cannot reach {where}: {_os_reason(exc, db)}") from None
    except Exception as exc:
        state = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
        if not state.startswith(_REFUSED_STATES):
            raise
        reason = str(exc.orig).strip().splitlines()[0]  # type: ignore[attr-defined]
        raise CommandFailed(f"cannot use {where}: {reason} "
                            "(try: check PIMBOT_DATABASE_URL)") from None


def _os_reason(exc: OSError, db: Database) -> str:
    """Why, and what to try (``PIMBOT_DATABASE_URL`` is where the address comes from)."""
    check = "check PIMBOT_DATABASE_URL"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused (try: start PostgreSQL there, or {check})"
    if isinstance(exc, FileNotFoundError) and db.sqlite_path is not None:
        return (f"the directory {db.sqlite_path.parent} does not exist (try: create it, or "
                f"{check})")
    if isinstance(exc, PermissionError):
        return f"permission denied (try: {check})"
    if isinstance(exc, TimeoutError):
        return f"no answer in time (try: {check})"
    text = (exc.strerror or str(exc) or type(exc).__name__).strip()
    return f"{text[0].lower()}{text[1:]} (try: {check})"
