"""Every table pimbot keeps. Times are aware UTC (``UtcDateTime``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; returns aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; pimbot keeps aware UTC times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

# Integer ids: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}  # noqa: RUF012


class PersonRow(Base):
    __tablename__ = "people"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class PlatformIdentityRow(Base):
    """A person's account on a chat platform, with what is needed to message them."""

    __tablename__ = "platform_identities"
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    conversation_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime]


class GroupMemberRow(Base):
    __tablename__ = "group_members"
    group: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)


class RoleRow(Base):
    """The policy's role definitions as applied (``spec`` is the validated YAML mapping)."""

    __tablename__ = "roles"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class AssignmentRow(Base):
    __tablename__ = "assignments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[str] = mapped_column(String(16))  # eligible | active
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16))  # policy | admin
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class RequestRow(Base):
    """An activation request (or break-glass, extension, active assignment) and its state."""

    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    duration_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: permanent
    reason: Mapped[str] = mapped_column(Text, default="")
    ticket: Mapped[str] = mapped_column(String(200), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    min_approvals: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    assignment_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    requested_at: Mapped[datetime]
    start_at: Mapped[datetime]  # when the grant should happen
    approval_due_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decision_note: Mapped[str] = mapped_column(Text, default="")
    granted_at: Mapped[datetime | None]  # the clock starts here
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]  # the provider confirmed the revoke
    provider_busy_until: Mapped[datetime | None]  # lease: one provider call in flight at a time
    grant_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure: Mapped[str] = mapped_column(Text, default="")
    votes_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_requests_email_role_state", "email", "role", "state"),)
    # Every change is a compare-and-set: UPDATE … WHERE version = ? (else StaleDataError).
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class VoteRow(Base):
    __tablename__ = "votes"
    request_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("requests.id"), primary_key=True
    )
    approver: Mapped[str] = mapped_column(String(320), primary_key=True)
    decision: Mapped[str] = mapped_column(String(16))  # approve | deny
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class MessageRow(Base):
    """A card pimbot sent about an object, so every copy can be redrawn when it changes."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(32), index=True)  # request / review item id
    view: Mapped[str] = mapped_column(String(32))  # which view builder drew it
    audience: Mapped[str] = mapped_column(String(400))  # user:EMAIL or channel:PLATFORM:NAME
    platform: Mapped[str] = mapped_column(String(32))
    ref: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent_at: Mapped[datetime]


class JobRow(Base):
    """A durable job (see ``pimbot.scheduling``): claimed under a lease, retried with backoff."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=20)
    # Lower runs first among due jobs: revocations never wait behind a burst of notices.
    priority: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    # Bookkeeping only (the database's clock); due times always come from the Clock port.
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_jobs_status_due", "status", "due_at"),
                      Index("ix_jobs_status_priority_due", "status", "priority", "due_at"))


class AuditEventRow(Base):
    """Append-only, hash-chained audit log (``pimbot.store.audit_log``).

    ``seq`` is assigned explicitly (last seq + 1 under the chain lock) because it is hashed.
    ``mac`` is HMAC-SHA256 of ``hash`` under the audit key named by ``key_id`` (the key itself
    is never stored); both are NULL on events written before the chain was keyed (0004).
    """

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(400), default="", index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))


class MfaEnrollmentRow(Base):
    __tablename__ = "mfa_enrollments"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    pending_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    total_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    hard_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class MfaUsedStepRow(Base):
    """A TOTP time step accepted once per person (replay protection across replicas)."""

    __tablename__ = "mfa_used_steps"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    used_at: Mapped[datetime]


class SettingRow(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


__all__ = [
    "AssignmentRow",
    "AuditEventRow",
    "Base",
    "GroupMemberRow",
    "JobRow",
    "MessageRow",
    "MfaEnrollmentRow",
    "MfaUsedStepRow",
    "PersonRow",
    "PlatformIdentityRow",
    "RequestRow",
    "RoleRow",
    "SettingRow",
    "UniqueConstraint",
    "VoteRow",
]
