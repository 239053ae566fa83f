"""SecretBox: AES-GCM sealing bound to an owner, key loading, and the dev key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from pimbot.secretbox import (
    SecretBox,
    SecretBoxError,
    SecretKeyError,
    dev_key_file,
    generate_key,
    load_key,
)

OWNER = b"bob@example.com"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(load_key(generate_key()))


def test_round_trip(box: SecretBox) -> None:
    blob = box.seal(b"JBSWY3DPEHPK3PXP", OWNER)
    assert box.open(blob, OWNER) == b"JBSWY3DPEHPK3PXP"
    assert b"JBSWY3DPEHPK3PXP" not in blob


def test_same_secret_seals_differently_each_time(box: SecretBox) -> None:
    assert box.seal(b"secret", OWNER) != box.seal(b"secret", OWNER)


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_tampered_blob_is_refused(box: SecretBox, position: int) -> None:
    blob = bytearray(box.seal(b"secret", OWNER))
    blob[position] ^= 0x01
    with pytest.raises(SecretBoxError):
        box.open(bytes(blob), OWNER)


def test_truncated_blob_is_refused(box: SecretBox) -> None:
    with pytest.raises(SecretBoxError):
        box.open(box.seal(b"secret", OWNER)[:20], OWNER)


def test_other_owner_cannot_open(box: SecretBox) -> None:
    blob = box.seal(b"secret", OWNER)
    with pytest.raises(SecretBoxError):
        box.open(blob, b"carol@example.com")


def test_other_key_cannot_open(box: SecretBox) -> None:
    blob = box.seal(b"secret", OWNER)
    with pytest.raises(SecretBoxError):
        SecretBox(load_key(generate_key())).open(blob, OWNER)


def test_generated_key_loads_with_or_without_padding() -> None:
    text = generate_key()
    assert len(load_key(text)) == 32
    assert load_key(text.rstrip("=") + "\n") == load_key(text)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "empty"),
        (base64.urlsafe_b64encode(os.urandom(16)).decode(), "32 bytes, not 16"),
        ("not base64 at all!!", "not URL-safe base64"),
    ],
    ids=["empty", "16 random bytes", "not base64"],  # stable ids: xdist workers must agree
)
def test_bad_key_gets_a_clear_error(value: str, words: str) -> None:
    with pytest.raises(SecretKeyError, match=words) as caught:
        load_key(value)
    assert "pimbot keygen" in str(caught.value)


def test_repr_hides_the_key(box: SecretBox) -> None:
    assert "hidden" in repr(box)


def test_dev_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    database = tmp_path / "pimbot.db"
    key, created = dev_key_file(database)
    assert created
    path = tmp_path / "pimbot.db.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path.read_text()) == key
    again, created_again = dev_key_file(database)
    assert (again, created_again) == (key, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pimbot.db.key"]


def test_corrupt_dev_key_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pimbot.db.key").write_text("short\n")
    with pytest.raises(SecretKeyError, match=r"pimbot\.db\.key"):
        dev_key_file(tmp_path / "pimbot.db")
