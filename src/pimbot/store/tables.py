"""Every table pimbot keeps. Times are aware UTC (``UtcDateTime``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
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
    text,
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

    # SQLite: the two steps above and SQLAlchemy's DATETIME string conversion after them, as
    # one function each way (the same text, ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC; the C
    # ``isoformat`` / ``fromisoformat`` instead of a %-format and a regular expression): a
    # turn binds dozens of times, ~2.8 µs each through the two steps, ~1.0 µs so.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_time_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_time_value
        return super().result_processor(dialect, coltype)


def _sqlite_time_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime stored; pimbot keeps aware UTC times only")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_time_value(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

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
    # the platform's word on the person at the last lookup that succeeded (a ``Standing``);
    # None: never recorded (a row from before 0021, or a platform that does not say)
    standing: Mapped[str | None] = mapped_column(String(32), nullable=True)


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
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[str] = mapped_column(String(16))  # eligible | active
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16))  # policy | admin
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    # Set when an access review removed it: a policy apply never adds it back until the
    # policy file has been edited to drop it (a new decision), which clears ``review_hold``.
    removed_by_review: Mapped[str | None] = mapped_column(String(32), nullable=True)
    review_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # (email, role): a person's assignment of a role, the eligibility check of every click
    # and grant (with one index on each, SQLite chose the role's: every holder of it read).
    __table_args__ = (Index("ix_assignments_email_role", "email", "role"),)


class RequestRow(Base):
    """An activation request (or break-glass, extension, active assignment) and its state."""

    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # email and state are served by the two indexes below (their leading columns)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(32))
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
    grant_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    rule_note: Mapped[str] = mapped_column(Text, default="", server_default="")  # approval rule
    escalation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failure: Mapped[str] = mapped_column(Text, default="")
    votes_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_requests_email_role_state", "email", "role", "state"),
                      # ``pending``: an approver's queue, oldest first
                      Index("ix_requests_state_role_requested_at", "state", "role",
                            "requested_at"))
    # Every change is a compare-and-set: UPDATE … WHERE version = ? (else StaleDataError).
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class GrantState(StrEnum):
    GRANTING = "granting"  # the provider call is (or may have been) made
    GRANTED = "granted"  # the provider confirmed it
    REVOKING = "revoking"  # no hold is left: the revoke is due or in flight
    REVOKED = "revoked"  # the provider confirmed the revoke


LIVE_GRANT_STATES = (GrantState.GRANTING.value, GrantState.GRANTED.value)


class GrantRow(Base):
    """What pimbot granted at a provider, recorded when it granted it.

    Revokes, drift checks and reconciliation read this record (provider, parameters, the
    activation id sent, the provider's ref), never the current policy. A person's *slot* for a
    role has at most one live grant (the unique index): every hold of the slot (activations,
    an active assignment) shares it, and the last hold to end revokes it.
    """

    __tablename__ = "grants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    activation_id: Mapped[str] = mapped_column(String(32))  # the id the provider was sent
    state: Mapped[str] = mapped_column(String(16), index=True)
    ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    starts_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # as sent to the provider (advisory: pimbot revokes)
    created_at: Mapped[datetime]
    granted_at: Mapped[datetime | None]
    revoke_due_at: Mapped[datetime | None]  # when the last hold ended
    revoked_at: Mapped[datetime | None]
    # One provider call at a time: a lease extended while the call is in flight, and a token
    # that fences completion (a worker whose lease was taken over writes nothing).
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None]
    # Which replica holds the lease: a replica found dead has its leases taken over at once.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str] = mapped_column(Text, default="")
    # When the role's channels were last told that this grant's revoke is failing (they are
    # told at the first failure and hourly after, until the provider confirms).
    failure_alerted_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("uq_grants_live_slot", "email", "role", unique=True,
              sqlite_where=text("state IN ('granting', 'granted')"),
              postgresql_where=text("state IN ('granting', 'granted')")),
        Index("ix_grants_email_role", "email", "role"),
    )
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


class ReviewCampaignRow(Base):
    """An access review: the assignments of its roles at its start, one item each."""

    __tablename__ = "review_campaigns"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))  # the policy schedule's name, or ad-hoc
    # Scheduled campaigns start once per period across replicas (NAME:PERIOD is unique).
    period_key: Mapped[str | None] = mapped_column(String(240), nullable=True, unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    reviewers: Mapped[str] = mapped_column(String(2000))  # approvers | admins | self | list
    if_no_response: Mapped[str] = mapped_column(String(20))
    recommend_after_s: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | closed
    created_by: Mapped[str] = mapped_column(String(320))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReviewItemRow(Base):
    """One person's access to one role under review, or a break-glass to account for."""

    __tablename__ = "review_items"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # assignment | breakglass
    assignment_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(200))
    assignment_type: Mapped[str] = mapped_column(String(16), default="")
    since: Mapped[datetime | None]
    last_activation_at: Mapped[datetime | None]
    activations_90d: Mapped[int] = mapped_column(Integer, default=0)
    recommendation: Mapped[str] = mapped_column(String(16))  # keep | remove
    recommendation_reason: Mapped[str] = mapped_column(Text, default="")
    reviewers: Mapped[list[str]] = mapped_column(JSON)
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16), default="")  # kept | removed (at close)
    applied_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_review_items_open", "decision", "campaign_id"),)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ReviewerRow(Base):
    """Who may answer a review item (so "what waits for me" is one indexed query)."""

    __tablename__ = "review_reviewers"
    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)


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
    # Unique among queued jobs only: a job that ran (found work or not) frees its key.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Bookkeeping only (the database's clock); due times always come from the Clock port.
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_jobs_status_due", "status", "due_at"),
                      Index("ix_jobs_status_priority_due", "status", "priority", "due_at"),
                      Index("ix_jobs_status_lease", "status", "lease_expires_at"),
                      Index("uq_jobs_queued_dedupe_key", "dedupe_key", unique=True,
                            sqlite_where=text("status = 'queued'"),
                            postgresql_where=text("status = 'queued'")))


class AuditEventRow(Base):
    """Append-only, hash-chained audit log (``pimbot.store.audit_log``).

    ``seq`` is assigned explicitly (last seq + 1 under the chain lock) because it is hashed.
    ``mac`` is HMAC-SHA256 of ``hash`` under the audit key named by ``key_id`` (the key itself
    is never stored); both are NULL on events written before the chain was keyed (0004).
    """

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(400), default="")
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))
    # Set on events that may happen once only (``grant.revoked:ID``, ``request.ended:ID``):
    # the unique constraint turns a second recording, on any replica, into a rollback.
    # Not hashed: it is derived from the event, and only guards against writing it twice.
    once_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)

    # ``audit PERSON|ROLE``: each way an event names someone is read newest first through
    # its own index (``pimbot.store.audit_search``); ``->>`` works on PostgreSQL and SQLite.
    __table_args__ = (
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        Index("ix_audit_events_subject_seq", "subject", "seq"),
        Index("ix_audit_events_detail_user", text("(detail ->> 'user')"), "seq"),
        Index("ix_audit_events_detail_role", text("(detail ->> 'role')"), "seq"),
    )


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


class InboundDeliveryRow(Base):
    """An inbound chat request taken to act on, keyed by what the platform makes unique
    (a Slack ``trigger_id``, ``action_ts`` or ``event_id``): the primary key turns a replay,
    on any replica, into a conflict; ``done_at`` says it was finished. Rows outlive the
    platform's replay window, then go (``pimbot.store.deliveries``)."""

    __tablename__ = "inbound_deliveries"
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the key
    kind: Mapped[str] = mapped_column(String(32))  # command | block_actions | event | …
    seen_at: Mapped[datetime] = mapped_column(index=True)  # when last claimed
    # the replica acting on it (null once that replica is gone), and when it finished: a
    # retry of a delivery never finished by a dead recorder is acted on again (0016)
    owner: Mapped[str | None] = mapped_column(String(100), default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class ReplicaRow(Base):
    """A running ``pimbot`` process (``pimbot.scheduling.replicas``): where it runs and when
    it last said it was alive, so the others can take over its leases when it dies."""

    __tablename__ = "replicas"
    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    pidspace: Mapped[str] = mapped_column(String(200), default="")  # boot id + pid namespace
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime] = mapped_column(index=True)


class SettingRow(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


# -- the Teams adapter's own tables (revision 0007) -------------------------------------------


class TeamsConversationRow(Base):
    """A Teams team or channel pimbot was added to or heard from: where to post to it."""

    __tablename__ = "teams_conversations"
    conversation_id: Mapped[str] = mapped_column(String(400), primary_key=True)  # 19:…@thread…
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    service_url: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(32), default="channel")  # channel | team
    name: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime]
    # The team a channel was heard in (a team's own row: its id); "" when not known.
    team_id: Mapped[str] = mapped_column(String(400), default="", server_default="",
                                         index=True)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)  # pimbot removed


class TeamsCardRow(Base):
    """The Adaptive Card a Teams message shows now (as last drawn by the core), so that an
    ``adaptiveCard/action`` refresh or an invoke answer can return it without reading it back
    from the chat. Cards holding a secret (MFA enrolment) are never stored."""

    __tablename__ = "teams_cards"
    conversation_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    service_url: Mapped[str] = mapped_column(String(500))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


__all__ = [
    "AssignmentRow",
    "AuditEventRow",
    "Base",
    "GrantRow",
    "GrantState",
    "GroupMemberRow",
    "InboundDeliveryRow",
    "JobRow",
    "MessageRow",
    "MfaEnrollmentRow",
    "MfaUsedStepRow",
    "PersonRow",
    "PlatformIdentityRow",
    "ReplicaRow",
    "RequestRow",
    "ReviewCampaignRow",
    "ReviewItemRow",
    "ReviewerRow",
    "RoleRow",
    "SettingRow",
    "TeamsCardRow",
    "TeamsConversationRow",
    "UniqueConstraint",
    "VoteRow",
]
