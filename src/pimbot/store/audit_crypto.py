"""The audit chain's digests and keys: the SHA-256 chain, and the HMAC that keys it.

Every event has a ``hash``: SHA-256 of its canonical form, which includes the previous event's
hash, so each hash commits to the whole log before it. Every event written since the chain
was keyed also has a ``mac``: HMAC-SHA256 of its hash under the audit key, named by
``key_id``. Because the hash commits to everything before, one valid MAC vouches for the
whole prefix: events under a retired key (or written before the chain was keyed) stay
verifiable through any later event, or checkpoint, MACed under a key that is configured.

The key is never stored in the database: it is ``PIMBOT_AUDIT_KEY``, or derived with HKDF
from ``PIMBOT_SECRET_KEY``. A ``key_id`` is a public fingerprint of a key (an HMAC of a fixed
label): it lets verification pick the key and reveals nothing about it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

GENESIS_HASH = "0" * 64
KEY_BYTES = 32
_KEY_ID_LABEL = b"pimbot audit key id v1"
_EVENT_LABEL = b"pimbot audit event v1\n"
_RECORD_LABEL = b"pimbot audit checkpoint v1\n"
_FLOOR_LABEL = b"pimbot audit floor v1\n"  # never a checkpoint's: one is not the other
_HKDF_INFO = b"pimbot audit chain v1"


class AuditKeyError(ValueError):
    """An audit key that cannot be used (the message never contains the key)."""


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
    return hashlib.sha256(canonical_json(canonical).encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class AuditKey:
    """One HMAC key and its public fingerprint."""

    secret: bytes = field(repr=False)
    key_id: str = ""

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise AuditKeyError(f"an audit key must be {KEY_BYTES} bytes, not {len(self.secret)}")
        if not self.key_id:
            fingerprint = hmac.new(self.secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()
            object.__setattr__(self, "key_id", fingerprint[:16])

    def event_mac(self, digest: str) -> str:
        """The MAC of an event whose ``hash`` is ``digest`` (binds the key id too)."""
        message = _EVENT_LABEL + self.key_id.encode() + b"\n" + digest.encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def record_mac(self, record: dict[str, Any]) -> str:
        """The MAC of a checkpoint record (its canonical JSON, without the ``mac`` field)."""
        message = _RECORD_LABEL + canonical_json(record).encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def floor_mac(self, record: dict[str, Any]) -> str:
        """The MAC of a retention floor record, under a label of its own: a checkpoint line
        (which is not secret) is never a valid floor, nor a floor a checkpoint."""
        message = _FLOOR_LABEL + canonical_json(record).encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditKeyring:
    """The key new events are MACed under, and the earlier ones still trusted to verify."""

    current: AuditKey
    previous: tuple[AuditKey, ...] = ()

    def __repr__(self) -> str:  # never show a key
        ids = ", ".join(k.key_id for k in (self.current, *self.previous))
        return f"AuditKeyring(<keys hidden>, ids=[{ids}])"

    @classmethod
    def ephemeral(cls) -> AuditKeyring:
        """A random key nobody else has: for tests and benchmarks, which verify in-process.
        Events written under it fail ``pimbot audit verify`` (their key is unknown there)."""
        return cls(AuditKey(secrets.token_bytes(KEY_BYTES)))

    def find(self, key_id: str | None) -> AuditKey | None:
        for key in (self.current, *self.previous):
            if key.key_id == key_id:
                return key
        return None

    def rotated_to(self, new: AuditKey) -> AuditKeyring:
        """This keyring with ``new`` as the current key and the old current one trusted."""
        kept = tuple(k for k in (self.current, *self.previous) if k.key_id != new.key_id)
        return AuditKeyring(new, kept)


def macs_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)


def derive_audit_key(secret_key: bytes) -> AuditKey:
    """The audit key implied by ``PIMBOT_SECRET_KEY`` when ``PIMBOT_AUDIT_KEY`` is not set."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_HKDF_INFO)
    return AuditKey(hkdf.derive(secret_key))


def load_audit_key(value: str, name: str = "PIMBOT_AUDIT_KEY") -> AuditKey:
    """Decode a key given as 32 bytes of URL-safe base64 (``pimbot keygen`` prints one)."""
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"{name} is not URL-safe base64") from None
    if len(raw) != KEY_BYTES:
        raise AuditKeyError(f"{name} must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return AuditKey(raw)


def load_audit_keys(values: Iterable[str], name: str) -> tuple[AuditKey, ...]:
    return tuple(load_audit_key(value, name) for value in values if value.strip())
