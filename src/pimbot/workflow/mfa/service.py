"""TOTP multi-factor authentication inside chat: enrol, confirm, verify (step-up), reset.

Verifier rules (RFC 6238, NIST SP 800-63B): 30-second steps, SHA-1, 6 digits, at most one
step of drift either way. A time step is accepted once per person: never a step at or before
the last accepted one, and the ``mfa_used_steps`` primary key (email, step) makes two
simultaneous submissions of one code succeed once, across replicas. Every 5th consecutive
failure locks MFA for 15 minutes; 20 consecutive failures lock it until an admin resets it.
Every attempt is audited with its outcome and reason, never with the code or the secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.ports import Clock
from pimbot.secretbox import SecretBox, SecretBoxError
from pimbot.store.audit_log import append_event
from pimbot.store.database import Database
from pimbot.store.tables import MfaEnrollmentRow, MfaUsedStepRow
from pimbot.workflow.mfa.qr import qr_png, qr_text

log = logging.getLogger(__name__)

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SOFT_LOCK_EVERY = 5
SOFT_LOCK_FOR = timedelta(minutes=15)
HARD_LOCK_AFTER = 20
CODE_HINT = "the 6 digits your authenticator app shows now"


# The codes accepted during the chat turn running now, so that a turn retried after a race
# (its first attempt's transaction lost) is not refused its own code as a replay. Only
# digests are kept, for one turn, in this process; see ``turn_scope``.
_accepted_this_turn: ContextVar[set[tuple[str, str, bytes]] | None] = ContextVar(
    "pimbot_mfa_accepted_this_turn", default=None)


@contextlib.contextmanager
def turn_scope() -> Iterator[None]:
    """Wrap one chat turn (every attempt of it): a code accepted by an earlier attempt is
    accepted again, for the same person and purpose, until the turn ends."""
    token = _accepted_this_turn.set(set())
    try:
        yield
    finally:
        _accepted_this_turn.reset(token)


def _turn_key(email: str, code: str, purpose: str) -> tuple[str, str, bytes]:
    return (email, purpose, hashlib.sha256(code.strip().encode()).digest())


class MfaAction(StrEnum):
    ENROLL_STARTED = "mfa.enroll_started"
    CONFIRM = "mfa.confirm"
    VERIFY = "mfa.verify"
    RESET = "mfa.reset"


class MfaReason(StrEnum):
    OK = "ok"
    WRONG_CODE = "wrong_code"
    REPLAYED = "replayed"
    LOCKED = "locked"
    NOT_ENROLLED = "not_enrolled"
    NOT_CONFIRMED = "not_confirmed"
    NOTHING_PENDING = "nothing_pending"
    MISSING_CODE = "missing_code"
    UNREADABLE_SECRET = "unreadable_secret"


@dataclass(frozen=True)
class Enrollment:
    """What a person needs to add pimbot to an authenticator app (send only in a DM)."""

    secret_base32: str = field(repr=False)
    uri: str = field(repr=False)
    qr_png: bytes = field(repr=False)
    qr_text: str = field(repr=False)


@dataclass(frozen=True)
class MfaStatus:
    enrolled: bool
    pending: bool
    locked_until: datetime | None  # None unless a temporary lock is in force now
    hard_locked: bool


@dataclass(frozen=True)
class _Outcome:
    reason: MfaReason
    error: PimError | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def time_step(at: datetime) -> int:
    return math.floor(at.timestamp()) // STEP_SECONDS


class MfaService:
    def __init__(self, db: Database, box: SecretBox, clock: Clock, issuer: str = "pimbot") -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._issuer = issuer

    async def enroll(self, email: str) -> Enrollment:
        """Start (or restart) enrolment with a new pending secret; the active one stays."""
        secret = pyotp.random_base32()
        try:
            await self._store_pending(email, secret)
        except IntegrityError:  # a simultaneous first enrolment created the row: go again
            await self._store_pending(email, secret)
        log.info("mfa enrolment started", extra={"email": email})
        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=self._issuer)
        return Enrollment(secret, uri, qr_png(uri), qr_text(uri))

    async def _store_pending(self, email: str, secret: str) -> None:
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await _row_for_update(session, email)
            if row is None:
                row = _new_row(email, now)
                session.add(row)
            row.pending_secret_enc = self._box.seal(secret.encode("ascii"), email.encode())
            row.updated_at = now
            detail = {"replacing": row.secret_enc is not None}
            await self._audit(session, now, email, MfaAction.ENROLL_STARTED, email, "ok", detail)

    async def confirm(self, email: str, code: str) -> None:
        """Make the pending secret the active one, given a current code from it."""
        await self._attempt(email, code, purpose="confirm", confirming=True)

    async def verify(self, email: str, code: str | None, *, purpose: str) -> None:
        """Step-up check; raises ``PimError(ErrorCode.MFA, …)`` unless the code is accepted.

        Inside ``turn_scope``, a code this turn already had accepted (an attempt retried after
        a race) passes again without being spent twice."""
        accepted = _accepted_this_turn.get()
        key = _turn_key(email, code, purpose) if code else None
        if accepted is not None and key is not None and key in accepted:
            return
        await self._attempt(email, code, purpose=purpose, confirming=False)
        if accepted is not None and key is not None:
            accepted.add(key)

    async def status(self, email: str) -> MfaStatus:
        now = self._clock.now()
        async with self._db.read() as session:
            row = await session.get(MfaEnrollmentRow, email)
        if row is None:
            return MfaStatus(enrolled=False, pending=False, locked_until=None, hard_locked=False)
        locked = row.locked_until if row.locked_until and row.locked_until > now else None
        return MfaStatus(
            enrolled=row.secret_enc is not None,
            pending=row.pending_secret_enc is not None,
            locked_until=locked,
            hard_locked=row.hard_locked,
        )

    async def reset(self, admin: str, email: str) -> None:
        """Clear a person's enrolment and lockout (the caller has checked the admin's MFA)."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await _row_for_update(session, email)
            if row is not None:
                await session.delete(row)
            await session.execute(delete(MfaUsedStepRow).where(MfaUsedStepRow.email == email))
            detail = {"was_enrolled": row is not None and row.secret_enc is not None}
            await self._audit(session, now, admin, MfaAction.RESET, email, "ok", detail)
        log.info("mfa reset", extra={"email": email, "admin": admin})

    async def _attempt(
        self, email: str, code: str | None, *, purpose: str, confirming: bool
    ) -> None:
        now = self._clock.now()
        action = MfaAction.CONFIRM if confirming else MfaAction.VERIFY
        async with self._db.transaction() as session:
            row = await _row_for_update(session, email)
            outcome = _precheck(row, code, now, confirming)
            if outcome is None:
                assert row is not None and code is not None
                outcome = await self._check_code(session, row, code, now, confirming)
            result = "ok" if outcome.error is None else "refused"
            detail = {"purpose": purpose, "reason": str(outcome.reason), **outcome.detail}
            await self._audit(session, now, email, action, email, result, detail)
        # Committed: a refusal is recorded (failure count, lock, audit) before it is raised.
        log.info("mfa %s: %s", action, outcome.reason, extra={"email": email, "purpose": purpose})
        if outcome.error is not None:
            raise outcome.error

    async def _audit(
        self,
        session: AsyncSession,
        at: datetime,
        actor: str,
        action: MfaAction,
        subject: str,
        outcome: str,
        detail: dict[str, Any],
    ) -> None:
        """One audit event: outcome and reason only, never a code or a secret."""
        await append_event(
            self._db, session, at=at, actor=actor, action=str(action), subject=subject,
            outcome=outcome, detail=detail,
        )  # fmt: skip

    async def _check_code(
        self,
        session: AsyncSession,
        row: MfaEnrollmentRow,
        code: str,
        now: datetime,
        confirming: bool,
    ) -> _Outcome:
        sealed = row.pending_secret_enc if confirming else row.secret_enc
        assert sealed is not None
        try:
            secret = self._box.open(sealed, row.email.encode()).decode("ascii")
        except SecretBoxError:
            log.error("mfa secret cannot be opened with this key", extra={"email": row.email})
            return _Outcome(MfaReason.UNREADABLE_SECRET, _unreadable())
        matched = _matching_steps(secret, code, time_step(now))
        if not matched:
            return _record_failure(row, now)
        fresh = [step for step in matched if step > row.last_step]
        if not fresh or not await _claim_step(session, row.email, fresh[0], now):
            return _Outcome(MfaReason.REPLAYED, _replayed())
        if confirming:
            row.secret_enc, row.pending_secret_enc = row.pending_secret_enc, None
            row.confirmed_at = now
        row.last_step = fresh[0]
        row.failures = 0
        row.locked_until = None
        row.updated_at = now
        return _Outcome(MfaReason.OK)


async def _row_for_update(session: AsyncSession, email: str) -> MfaEnrollmentRow | None:
    query = select(MfaEnrollmentRow).where(MfaEnrollmentRow.email == email).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


def _new_row(email: str, now: datetime) -> MfaEnrollmentRow:
    return MfaEnrollmentRow(
        email=email, secret_enc=None, pending_secret_enc=None, confirmed_at=None, last_step=0,
        failures=0, total_failures=0, locked_until=None, hard_locked=False, updated_at=now,
    )  # fmt: skip


async def _claim_step(session: AsyncSession, email: str, step: int, now: datetime) -> bool:
    """Record the step as used; False if another transaction already did (any replica)."""
    try:
        async with session.begin_nested():
            session.add(MfaUsedStepRow(email=email, step=step, used_at=now))
    except IntegrityError:
        return False
    oldest_useful = step - 2 * DRIFT_STEPS
    await session.execute(
        delete(MfaUsedStepRow).where(
            MfaUsedStepRow.email == email, MfaUsedStepRow.step < oldest_useful
        )
    )
    return True


def _matching_steps(secret: str, code: str, current: int) -> list[int]:
    """The steps within the drift window whose code equals ``code``, oldest first."""
    given = "".join(code.split())
    if len(given) != DIGITS or not given.isdigit():
        return []
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    steps = range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1)
    return [s for s in steps if hmac.compare_digest(totp.generate_otp(s), given)]


def _precheck(
    row: MfaEnrollmentRow | None, code: str | None, now: datetime, confirming: bool
) -> _Outcome | None:
    """A refusal that needs no code check, or None to go on and check the code."""
    if confirming and (row is None or row.pending_secret_enc is None):
        return _Outcome(
            MfaReason.NOTHING_PENDING,
            _error("You have no MFA enrolment waiting for confirmation", "mfa enroll"),
        )
    if not confirming and (row is None or row.secret_enc is None):
        if row is not None and row.pending_secret_enc is not None:
            return _Outcome(
                MfaReason.NOT_CONFIRMED,
                _error("Your MFA enrolment is not confirmed yet", "mfa confirm 123456"),
            )
        return _Outcome(MfaReason.NOT_ENROLLED, _error("You are not enrolled in MFA", "mfa enroll"))
    assert row is not None
    locked = _lock_error(row, now)
    if locked is not None:
        return _Outcome(MfaReason.LOCKED, locked)
    if code is None or not code.strip():
        hint = "mfa confirm 123456" if confirming else f"add `code 123456`: {CODE_HINT}"
        return _Outcome(MfaReason.MISSING_CODE, _error("This needs your authenticator code", hint))
    return None


def _record_failure(row: MfaEnrollmentRow, now: datetime) -> _Outcome:
    row.failures += 1
    row.total_failures += 1
    row.updated_at = now
    message = "That code is not valid"
    if row.failures >= HARD_LOCK_AFTER:
        row.hard_locked = True
        message += f"; MFA is now locked after {row.failures} failed codes"
        hint = "ask an admin to run mfa reset"
    elif row.failures % SOFT_LOCK_EVERY == 0:
        row.locked_until = now + SOFT_LOCK_FOR
        minutes = _minutes(SOFT_LOCK_FOR)
        message += f"; MFA is now locked for {minutes} minutes after {row.failures} failed codes"
        hint = "wait, then use the current code"
    else:
        hint = f"use {CODE_HINT}, and check your device's clock"
    detail: dict[str, Any] = {"failures": row.failures, "hard_locked": row.hard_locked}
    if row.locked_until is not None and row.locked_until > now:
        detail["locked_until"] = row.locked_until.isoformat()
    return _Outcome(MfaReason.WRONG_CODE, _error(message, hint), detail)


def _lock_error(row: MfaEnrollmentRow, now: datetime) -> PimError | None:
    if row.hard_locked:
        return _error(
            f"MFA is locked after {row.failures} failed codes; ask an admin to run mfa reset",
            f"an admin runs: mfa reset {row.email}",
        )
    if row.locked_until is not None and row.locked_until > now:
        minutes = _minutes(row.locked_until - now)
        unit = "minute" if minutes == 1 else "minutes"
        return _error(
            f"MFA is locked for {minutes} more {unit} after {row.failures} failed codes",
            "wait, then use the current code",
        )
    return None


def _minutes(span: timedelta) -> int:
    return max(1, math.ceil(span.total_seconds() / 60))


def _error(message: str, hint: str) -> PimError:
    return PimError(ErrorCode.MFA, message, hint)


def _replayed() -> PimError:
    return _error(
        "That code was already used; wait for the next one",
        "send the next code your authenticator app shows",
    )


def _unreadable() -> PimError:
    return _error(
        "Your MFA secret cannot be read with this server's key",
        "ask an admin to check PIMBOT_SECRET_KEY, or to run mfa reset",
    )


__all__ = ["Enrollment", "MfaAction", "MfaReason", "MfaService", "MfaStatus", "time_step"]
