"""MFA inside chat: enrolment, step-up verification, replay, lockout, secrets at rest."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import struct
import zlib
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, text, update

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.secretbox import SecretBox, generate_key, load_key, rotate_key
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, MfaEnrollmentRow
from pimbot.testing.fakes import FakeClock
from pimbot.workflow.mfa.qr import qr_matrix, qr_png, qr_text
from pimbot.workflow.mfa.service import MfaService, turn_scope

BOB = "bob@example.com"
CAROL = "carol@example.com"
STEP = timedelta(seconds=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(load_key(generate_key()))


@pytest.fixture
def mfa(db: Database, box: SecretBox, clock: FakeClock) -> MfaService:
    return MfaService(db, box, clock)


def code_at(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def wrong_code(secret: str, at: datetime) -> str:
    """A well-formed code that is valid for no step within two steps of ``at``."""
    taken = {code_at(secret, at + n * STEP) for n in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in taken)


async def enrolled(mfa: MfaService, clock: FakeClock, email: str = BOB) -> str:
    enrollment = await mfa.enroll(email)
    await mfa.confirm(email, code_at(enrollment.secret_base32, clock.now()))
    clock.advance(STEP)
    return enrollment.secret_base32


async def refusal(call: object) -> PimError:
    assert asyncio.iscoroutine(call)
    with pytest.raises(PimError) as caught:
        await call
    assert caught.value.code == ErrorCode.MFA
    assert caught.value.hint
    return caught.value


async def audit_rows(db: Database) -> list[AuditEventRow]:
    async with db.read() as session:
        query = select(AuditEventRow).order_by(AuditEventRow.seq)
        return list((await session.execute(query)).scalars())


async def test_enroll_gives_qr_uri_and_secret_then_confirm_and_verify(
    mfa: MfaService, clock: FakeClock
) -> None:
    enrollment = await mfa.enroll(BOB)
    assert enrollment.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "█" in enrollment.qr_text
    assert enrollment.uri.startswith("otpauth://totp/pimbot:bob%40example.com?")
    assert f"secret={enrollment.secret_base32}" in enrollment.uri
    assert enrollment.secret_base32 not in repr(enrollment)
    assert (await mfa.status(BOB)).pending and not (await mfa.status(BOB)).enrolled

    await mfa.confirm(BOB, code_at(enrollment.secret_base32, clock.now()))
    status = await mfa.status(BOB)
    assert status.enrolled and not status.pending
    clock.advance(STEP)
    await mfa.verify(BOB, code_at(enrollment.secret_base32, clock.now()), purpose="activate")


async def test_not_enrolled_and_unconfirmed_cannot_verify(
    mfa: MfaService, clock: FakeClock
) -> None:
    error = await refusal(mfa.verify(BOB, "123456", purpose="activate"))
    assert error.message == "You are not enrolled in MFA"
    assert error.hint == "mfa enroll"
    enrollment = await mfa.enroll(BOB)
    code = code_at(enrollment.secret_base32, clock.now())
    error = await refusal(mfa.verify(BOB, code, purpose="activate"))
    assert "not confirmed" in error.message
    assert not (await mfa.status(BOB)).enrolled


async def test_confirm_without_enrolment_is_refused(mfa: MfaService) -> None:
    error = await refusal(mfa.confirm(BOB, "123456"))
    assert error.hint == "mfa enroll"


async def test_missing_code_asks_for_it(mfa: MfaService, clock: FakeClock) -> None:
    await enrolled(mfa, clock)
    error = await refusal(mfa.verify(BOB, None, purpose="activate"))
    assert error.message == "This needs your authenticator code"
    assert "code 123456" in (error.hint or "")


async def test_reenrol_keeps_old_secret_until_new_one_is_confirmed(
    mfa: MfaService, clock: FakeClock
) -> None:
    old = await enrolled(mfa, clock)
    new = (await mfa.enroll(BOB)).secret_base32
    await refusal(mfa.verify(BOB, code_at(new, clock.now()), purpose="activate"))
    await mfa.verify(BOB, code_at(old, clock.now()), purpose="activate")
    clock.advance(STEP)
    await mfa.confirm(BOB, code_at(new, clock.now()))
    clock.advance(STEP)
    await refusal(mfa.verify(BOB, code_at(old, clock.now()), purpose="activate"))
    await mfa.verify(BOB, code_at(new, clock.now()), purpose="activate")


@pytest.mark.parametrize("drift", [-1, 1])
async def test_one_step_of_drift_is_accepted(mfa: MfaService, clock: FakeClock, drift: int) -> None:
    secret = await enrolled(mfa, clock)
    clock.advance(3 * STEP)
    await mfa.verify(BOB, code_at(secret, clock.now() + drift * STEP), purpose="activate")


@pytest.mark.parametrize("drift", [-2, 2])
async def test_two_steps_of_drift_are_refused(
    mfa: MfaService, clock: FakeClock, drift: int
) -> None:
    secret = await enrolled(mfa, clock)
    clock.advance(3 * STEP)
    code = code_at(secret, clock.now() + drift * STEP)
    error = await refusal(mfa.verify(BOB, code, purpose="activate"))
    assert error.message == "That code is not valid"


async def test_a_code_is_accepted_once(mfa: MfaService, clock: FakeClock) -> None:
    secret = await enrolled(mfa, clock)
    code = code_at(secret, clock.now())
    await mfa.verify(BOB, code, purpose="activate")
    error = await refusal(mfa.verify(BOB, code, purpose="approve"))
    assert error.message == "That code was already used; wait for the next one"
    # An older step, still inside the drift window, is refused too.
    clock.advance(STEP)
    await mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate")
    await refusal(mfa.verify(BOB, code, purpose="activate"))
    assert (await mfa.status(BOB)).locked_until is None


async def test_a_retried_turn_keeps_the_code_its_first_attempt_spent(
    mfa: MfaService, clock: FakeClock, db: Database
) -> None:
    """A turn whose first attempt lost a race runs again (PimCore._turn); its code, already
    spent by that attempt, passes again for that turn only, same person and purpose."""
    secret = await enrolled(mfa, clock)
    code = code_at(secret, clock.now())
    with turn_scope():
        await mfa.verify(BOB, code, purpose="breakglass prod-db-admin")
        await mfa.verify(BOB, code, purpose="breakglass prod-db-admin")  # the retried attempt
        await refusal(mfa.verify(BOB, code, purpose="approve x1"))  # not for another purpose
        await refusal(mfa.verify("alice@example.com", code, purpose="breakglass prod-db-admin"))
    with turn_scope():  # a new turn: the code is spent
        await refusal(mfa.verify(BOB, code, purpose="breakglass prod-db-admin"))
    accepted = [r for r in await audit_rows(db) if r.action == "mfa.verify"
                and r.outcome == "ok"]
    assert len(accepted) == 1, "the code was spent (and audited as accepted) once"


async def test_a_step_older_than_the_last_accepted_one_is_refused(
    mfa: MfaService, clock: FakeClock
) -> None:
    secret = await enrolled(mfa, clock)
    clock.advance(3 * STEP)
    await mfa.verify(BOB, code_at(secret, clock.now() + STEP), purpose="activate")
    error = await refusal(mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate"))
    assert "already used" in error.message


async def test_two_simultaneous_uses_of_one_code_succeed_once(
    db: Database, box: SecretBox, clock: FakeClock, mfa: MfaService
) -> None:
    secret = await enrolled(mfa, clock)
    other_db = Database(db.url)
    try:
        services = [MfaService(db, box, clock), MfaService(other_db, box, clock)]
        code = code_at(secret, clock.now())
        results = await asyncio.gather(
            *(s.verify(BOB, code, purpose="activate") for s in services), return_exceptions=True
        )
    finally:
        await other_db.dispose()
    assert sum(r is None for r in results) == 1
    [error] = [r for r in results if r is not None]
    assert isinstance(error, PimError) and "already used" in error.message


async def test_five_failures_lock_for_fifteen_minutes(mfa: MfaService, clock: FakeClock) -> None:
    secret = await enrolled(mfa, clock)
    for _ in range(4):
        await refusal(mfa.verify(BOB, wrong_code(secret, clock.now()), purpose="activate"))
    fifth = await refusal(mfa.verify(BOB, wrong_code(secret, clock.now()), purpose="activate"))
    assert "locked for 15 minutes" in fifth.message
    clock.advance(timedelta(minutes=1))
    error = await refusal(mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate"))
    assert error.message == "MFA is locked for 14 more minutes after 5 failed codes"
    status = await mfa.status(BOB)
    assert status.locked_until == clock.now() + timedelta(minutes=14)
    clock.advance(timedelta(minutes=14))
    await mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate")
    assert (await mfa.status(BOB)).locked_until is None


async def test_wrong_confirmation_codes_count_as_failures(
    mfa: MfaService, clock: FakeClock
) -> None:
    secret = (await mfa.enroll(BOB)).secret_base32
    for _ in range(5):
        await refusal(mfa.confirm(BOB, wrong_code(secret, clock.now())))
    error = await refusal(mfa.confirm(BOB, code_at(secret, clock.now())))
    assert "locked" in error.message
    assert not (await mfa.status(BOB)).enrolled


async def test_success_resets_the_failure_count(mfa: MfaService, clock: FakeClock) -> None:
    secret = await enrolled(mfa, clock)
    for _ in range(4):
        await refusal(mfa.verify(BOB, wrong_code(secret, clock.now()), purpose="activate"))
    await mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate")
    clock.advance(STEP)
    for _ in range(4):
        await refusal(mfa.verify(BOB, "12 34 5x", purpose="activate"))
    await mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate")


async def test_twenty_failures_lock_until_an_admin_resets(
    mfa: MfaService, clock: FakeClock
) -> None:
    secret = await enrolled(mfa, clock)
    for _ in range(4):
        for _ in range(5):
            await refusal(mfa.verify(BOB, wrong_code(secret, clock.now()), purpose="activate"))
        clock.advance(timedelta(minutes=15))
    assert (await mfa.status(BOB)).hard_locked
    clock.advance(timedelta(days=3))
    error = await refusal(mfa.verify(BOB, code_at(secret, clock.now()), purpose="activate"))
    assert "ask an admin to run mfa reset" in error.message

    await mfa.reset("sec-lead@example.com", BOB)
    status = await mfa.status(BOB)
    assert not status.enrolled and not status.hard_locked
    await enrolled(mfa, clock)
    assert (await mfa.status(BOB)).enrolled


async def test_audit_records_every_attempt_but_never_the_code(
    db: Database, mfa: MfaService, clock: FakeClock
) -> None:
    secret = await enrolled(mfa, clock)
    good = code_at(secret, clock.now())
    bad = wrong_code(secret, clock.now())
    await refusal(mfa.verify(BOB, bad, purpose="approve"))
    await mfa.verify(BOB, good, purpose="activate")
    await refusal(mfa.verify(BOB, good, purpose="activate"))
    await mfa.reset("sec-lead@example.com", BOB)
    rows = await audit_rows(db)
    seen = [(r.action, r.outcome, r.detail.get("reason"), r.detail.get("purpose")) for r in rows]
    assert seen == [
        ("mfa.enroll_started", "ok", None, None),
        ("mfa.confirm", "ok", "ok", "confirm"),
        ("mfa.verify", "refused", "wrong_code", "approve"),
        ("mfa.verify", "ok", "ok", "activate"),
        ("mfa.verify", "refused", "replayed", "activate"),
        ("mfa.reset", "ok", None, None),
    ]
    assert rows[-1].actor == "sec-lead@example.com" and rows[-1].subject == BOB
    for row in rows:
        recorded = json.dumps([row.actor, row.action, row.subject, row.outcome, row.detail])
        assert good not in recorded and bad not in recorded and secret not in recorded


async def test_no_secret_in_clear_anywhere_in_the_database(
    db: Database, mfa: MfaService, clock: FakeClock
) -> None:
    active = await enrolled(mfa, clock)
    pending = (await mfa.enroll(BOB)).secret_base32
    for secret in (active, pending):
        raw = base64.b32decode(secret)
        needles = [secret, secret.lower(), raw.hex(), base64.b64encode(raw).decode()]
        dump = await database_dump(db)
        assert not [n for n in needles if n.lower() in dump.lower()]
        if db.sqlite_path is not None:
            files = db.sqlite_path.parent.glob(db.sqlite_path.name + "*")
            on_disk = b"".join(p.read_bytes() for p in files)
            assert secret.encode() not in on_disk and raw not in on_disk


async def database_dump(db: Database) -> str:
    """Every value of every table as text (SQLite: iterdump; PostgreSQL: ::text casts)."""
    if db.sqlite_path is not None:
        with sqlite3.connect(db.sqlite_path) as conn:
            return "\n".join(conn.iterdump())
    parts: list[str] = []
    async with db.read() as session:
        query = text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
        for table, column in (await session.execute(query)).all():
            values = await session.execute(text(f'SELECT "{column}"::text FROM "{table}"'))
            parts.extend(str(v) for v in values.scalars())
    assert parts, "the dump read nothing"
    return "\n".join(parts)


async def test_secret_rows_swapped_between_people_do_not_open(
    db: Database, mfa: MfaService, clock: FakeClock
) -> None:
    bob = await enrolled(mfa, clock, BOB)
    await enrolled(mfa, clock, CAROL)
    async with db.transaction() as session:
        rows = {r.email: r for r in (await session.execute(select(MfaEnrollmentRow))).scalars()}
        bob_blob, carol_blob = rows[BOB].secret_enc, rows[CAROL].secret_enc
        for email, blob in ((BOB, carol_blob), (CAROL, bob_blob)):
            query = update(MfaEnrollmentRow).where(MfaEnrollmentRow.email == email)
            await session.execute(query.values(secret_enc=blob))
    error = await refusal(mfa.verify(BOB, code_at(bob, clock.now()), purpose="activate"))
    assert "cannot be read" in error.message


async def test_rotate_key_re_encrypts_active_and_pending_secrets(
    db: Database, box: SecretBox, mfa: MfaService, clock: FakeClock
) -> None:
    bob = await enrolled(mfa, clock, BOB)
    carol_pending = (await mfa.enroll(CAROL)).secret_base32
    new_box = SecretBox(load_key(generate_key()))
    assert await rotate_key(db, box, new_box) == 2
    rotated = MfaService(db, new_box, clock)
    await rotated.verify(BOB, code_at(bob, clock.now()), purpose="activate")
    await rotated.confirm(CAROL, code_at(carol_pending, clock.now()))
    clock.advance(STEP)
    error = await refusal(mfa.verify(BOB, code_at(bob, clock.now()), purpose="activate"))
    assert "cannot be read" in error.message


def test_qr_png_is_a_valid_image_of_the_code() -> None:
    uri = "otpauth://totp/pimbot:bob%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=pimbot"
    png, matrix = qr_png(uri, scale=4), qr_matrix(uri)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length : at + 12 + length])[0] == zlib.crc32(
            kind + body
        )
        chunks[kind] = body
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, colour) == (len(matrix) * 4, len(matrix) * 4, 1, 0)
    pixels = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + (width + 7) // 8
    assert len(pixels) == stride * height
    for y, row in enumerate(matrix):
        line = pixels[y * 4 * stride : y * 4 * stride + stride]
        bits = [bool(line[1 + x // 8] & (0x80 >> (x % 8))) for x in range(width)]
        assert bits[::4] == [not dark for dark in row]  # dark modules are black (0)
    lines = qr_text(uri).splitlines()
    assert len(lines) == (len(matrix) + 1) // 2
    assert all(len(line) == len(matrix) for line in lines)
