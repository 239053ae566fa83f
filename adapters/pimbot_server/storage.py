"""The database and the TOTP sealing key, as the settings describe them."""

from __future__ import annotations

import logging
import secrets

from pimbot.secretbox import SecretBox, SecretKeyError, dev_key_file, load_key
from pimbot.store.database import Database
from pimbot_server.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def secret_box(settings: Settings, db: Database) -> SecretBox:
    """The key that seals TOTP secrets; a dev key file beside SQLite when none is configured."""
    if settings.secret_key:
        try:
            return SecretBox(load_key(settings.secret_key))
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
        return SecretBox(secrets.token_bytes(32))
    key, created = dev_key_file(path.resolve())
    if created:
        log.warning(
            "PIMBOT_SECRET_KEY is not set: created the development key file beside %s "
            "(set PIMBOT_SECRET_KEY in production; `pimbot keygen` prints one)",
            path,
        )
    else:
        log.info("PIMBOT_SECRET_KEY is not set: using the development key file beside %s", path)
    return SecretBox(key)


async def open_database(settings: Settings) -> Database:
    db = Database(settings.database_url)
    await db.upgrade()
    return db
