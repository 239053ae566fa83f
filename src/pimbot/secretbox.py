"""Secrets at rest: AES-256-GCM under ``PIMBOT_SECRET_KEY``.

A sealed blob is ``version (1 byte) || nonce (12 bytes) || ciphertext+tag``. The associated
data binds a blob to its owner (pimbot uses the person's email), so moving a blob to another
row makes it fail to open. ``rotate_key`` re-encrypts every stored TOTP secret under a new key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import MfaEnrollmentRow

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = 1
_TAG_BYTES = 16


class SecretKeyError(ValueError):
    """The configured key is not 32 bytes of URL-safe base64."""


class SecretBoxError(Exception):
    """A sealed blob cannot be opened: wrong key, wrong owner, or tampered data."""


class SecretBox:
    """Seal and open small secrets with AES-GCM, bound to associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the secret key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never show the key
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _bind(associated))
        return bytes([VERSION]) + nonce + sealed

    def open(self, blob: bytes, associated: bytes) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + _TAG_BYTES:
            raise SecretBoxError("sealed secret is too short")
        if blob[0] != VERSION:
            raise SecretBoxError(f"sealed secret has unknown format version {blob[0]}")
        nonce = blob[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + NONCE_BYTES :], _bind(associated))
        except InvalidTag:
            raise SecretBoxError(
                "sealed secret cannot be opened (wrong key, wrong owner or tampered data)"
            ) from None


def _bind(associated: bytes) -> bytes:
    # The version byte is authenticated too, so it cannot be swapped independently.
    return bytes([VERSION]) + associated


def generate_key() -> str:
    """A fresh key as URL-safe base64 text (what ``pimbot keygen`` prints)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def load_key(value: str) -> bytes:
    """Decode ``PIMBOT_SECRET_KEY``; padding is optional. Raises ``SecretKeyError``."""
    text = value.strip()
    if not text:
        raise SecretKeyError("PIMBOT_SECRET_KEY is empty; generate one with `pimbot keygen`")
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SecretKeyError(
            "PIMBOT_SECRET_KEY is not URL-safe base64; generate one with `pimbot keygen`"
        ) from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"PIMBOT_SECRET_KEY must decode to {KEY_BYTES} bytes, not {len(key)}; "
            "generate one with `pimbot keygen`"
        )
    return key


def key_file_path(sqlite_path: Path) -> Path:
    return sqlite_path.with_name(sqlite_path.name + ".key")


def dev_key_file(sqlite_path: Path) -> tuple[bytes, bool]:
    """Read, or create (mode 0600, atomically), the dev key file beside the SQLite file.

    Returns ``(key, created)``; the caller logs a warning when it created one. Two processes
    starting at once agree on one key: the file appears complete or not at all (hard link of
    a finished temporary file, which fails if the key file already exists).
    """
    path = key_file_path(sqlite_path)
    if path.exists():
        return _read_key_file(path), False
    encoded = generate_key()
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(encoded + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return _read_key_file(path), False
    finally:
        temp.unlink(missing_ok=True)
    return load_key(encoded), True


def _read_key_file(path: Path) -> bytes:
    try:
        return load_key(path.read_text(encoding="ascii"))
    except SecretKeyError as exc:
        raise SecretKeyError(f"key file {path}: {exc}") from None


async def rotate_key(db: Database, old: SecretBox, new: SecretBox) -> int:
    """Re-encrypt every stored TOTP secret (active and pending) in one transaction.

    Returns how many secrets were re-encrypted. If any secret does not open under ``old``,
    ``SecretBoxError`` is raised and nothing changes.
    """
    count = 0
    async with db.transaction() as session:
        query = select(MfaEnrollmentRow).order_by(MfaEnrollmentRow.email).with_for_update()
        for row in (await session.execute(query)).scalars():
            owner = row.email.encode()
            if row.secret_enc is not None:
                row.secret_enc = new.seal(old.open(row.secret_enc, owner), owner)
                count += 1
            if row.pending_secret_enc is not None:
                row.pending_secret_enc = new.seal(old.open(row.pending_secret_enc, owner), owner)
                count += 1
    return count


__all__ = [
    "KEY_BYTES",
    "SecretBox",
    "SecretBoxError",
    "SecretKeyError",
    "dev_key_file",
    "generate_key",
    "key_file_path",
    "load_key",
    "rotate_key",
]
