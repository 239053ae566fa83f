"""Reading requests: rows, snapshots for the views, and the questions use cases ask.

The queries a chat turn asks are built once, here, with their values as bound parameters:
SQLAlchemy then reuses each one's cache key and compiled form instead of building the
statement and its key again on every call (that, not SQLite, was most of a turn's cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, insert, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from pimbot.domain.approval_rules import describe_rules
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.model import AssignmentType, Policy
from pimbot.domain.states import OPEN_STATES, RequestKind, RequestState, is_terminal
from pimbot.store.prepared import Prepared, run
from pimbot.store.prepared_load import PreparedLoad, load
from pimbot.store.tables import AssignmentRow, GrantRow, GrantState, RequestRow, VoteRow
from pimbot.ui.views import RequestSnapshot, Vote


async def get_request(session: AsyncSession, request_id: str, *,
                      own: bool = False) -> RequestRow:
    """The request ``request_id``: the session's own copy when it has read it already and
    nothing of it is expired (as ``session.get``), else one query built once (the one
    ``session.get`` runs is built again on every call). ``own``: the person asked about a
    request of their own (cancel, deactivate, extend), so an unknown id is hinted with
    ``status``, where their requests are; otherwise with ``pending``."""
    key = request_id.strip().lower()
    row = session.identity_map.get(identity_key(RequestRow, key))
    if not isinstance(row, RequestRow) or inspect(row).expired_attributes:
        found = await load(session, _REQUEST, {"id": key})
        row = found[0] if found else None
    if row is None:
        raise PimError(ErrorCode.UNKNOWN_REQUEST, f"There is no request '{request_id}'; "
                       "status lists your own requests, pending the ones waiting for your "
                       "approval.", "status" if own else "pending")
    return row


# Read at the driver and loaded as the ORM loads them (``store/prepared_load.py``).
_REQUEST = PreparedLoad(select(RequestRow).where(RequestRow.id == bindparam("id")))
_VOTES = PreparedLoad(select(VoteRow).where(VoteRow.request_id == bindparam("request_id"))
                      .order_by(VoteRow.at))


# A new request is written with a Core INSERT prepared once (``store/prepared.py``), not an
# ORM add and flush: nothing else in its transaction changes the row. The ``RequestRow``
# object holds the same values (every column, defaults included) for what follows.
_COLUMNS = tuple(RequestRow.__table__.columns)
_INSERT_REQUEST = Prepared(insert(RequestRow.__table__),  # type: ignore[arg-type]
                           keys=tuple(column.key for column in _COLUMNS))
_DEFAULTS = {column.key: column.default.arg for column in _COLUMNS
             if isinstance(column.default, ScalarElementColumnDefault)}
_KEYS = frozenset(column.key for column in _COLUMNS)
_BLANK = {column.key: None for column in _COLUMNS} | _DEFAULTS
_MANAGER = inspect(RequestRow).class_manager


def new_request(**given: Any) -> RequestRow:
    """A request row not yet written: ``given`` and every other column's default. Its values
    are put in place as a load puts them (``store/prepared_load.py``), not set one attribute
    at a time through the ORM's change events: the object is never added to a session, only
    read (its INSERT is ``insert_request``'s)."""
    if set(given) - _KEYS:
        raise TypeError(f"not columns of requests: {sorted(set(given) - _KEYS)}")
    values = _BLANK | given
    values["version"] = 1  # the first value of the compare-and-set's version column
    row: RequestRow = _MANAGER.new_instance()
    instance_state(row).dict.update(values)
    return row


async def insert_request(session: AsyncSession, row: RequestRow) -> None:
    """Write ``new_request``'s row in the caller's transaction (the row object stays
    outside the session: later changes to it go through a read of the row)."""
    state = instance_state(row).dict
    await run(session, _INSERT_REQUEST, {key: state[key] for key in _KEYS})


async def votes_of(session: AsyncSession, request_id: str) -> list[VoteRow]:
    return await load(session, _VOTES, {"request_id": request_id})


async def snapshot(session: AsyncSession, policy: Policy, row: RequestRow,
                   votes: Sequence[VoteRow] | None = None) -> RequestSnapshot:
    """The request as the views draw it; ``votes`` when the caller has just read or written
    them (a new request has none), so they are not read again."""
    if votes is None:
        votes = await votes_of(session, row.id)
    role = policy.roles.get(row.role)
    approvers = policy.approvers_of(role, row.escalation) if role else ()
    return RequestSnapshot(
        id=row.id, kind=RequestKind(row.kind), email=row.email, role=row.role,
        state=RequestState(row.state),
        duration=timedelta(seconds=row.duration_s) if row.duration_s is not None else None,
        reason=row.reason, ticket=row.ticket, requested_at=row.requested_at,
        start_at=row.start_at, granted_at=row.granted_at, expires_at=row.expires_at,
        ended_at=row.ended_at, revoked_at=row.revoked_at, decided_at=row.decided_at,
        decided_by=row.decided_by, decision_note=row.decision_note, failure=row.failure,
        min_approvals=row.min_approvals, approvers=approvers,
        votes=tuple(Vote(v.approver, v.decision, v.comment, v.at) for v in votes),
        kept_by=await _kept_by(session, row),
        rule_note=row.rule_note,
        rules=tuple(describe_rules(role)) if role else (),
        escalated_to=tuple(t for step in (role.escalate[:row.escalation] if role else ())
                           for t in step.to),
    )


async def _kept_by(session: AsyncSession, row: RequestRow) -> str:
    """Another request of the person that still holds the grant this ended one shared."""
    if row.grant_id is None or row.revoked_at is not None or not is_terminal(
            RequestState(row.state)):
        return ""
    grant = await session.get(GrantRow, row.grant_id)
    if grant is None or grant.state != GrantState.GRANTED.value:
        return ""
    other = await session.scalar(select(RequestRow.id).where(
        RequestRow.grant_id == row.grant_id, RequestRow.id != row.id,
        RequestRow.state == RequestState.ACTIVE.value).limit(1))
    return other or ""


def _in_window(now: datetime | BindParameter[datetime]):  # type: ignore[no-untyped-def]
    return (
        or_(AssignmentRow.starts_at.is_(None), AssignmentRow.starts_at <= now),
        or_(AssignmentRow.ends_at.is_(None), AssignmentRow.ends_at > now),
        AssignmentRow.removed_at.is_(None),
    )


_NOW: BindParameter[datetime] = bindparam("now")
_ELIGIBLE_ROLES = Prepared(select(AssignmentRow.role).where(
    AssignmentRow.email == bindparam("email"),
    AssignmentRow.type == AssignmentType.ELIGIBLE.value, *_in_window(_NOW)))
_ELIGIBILITY = PreparedLoad(select(AssignmentRow).where(
    AssignmentRow.email == bindparam("email"), AssignmentRow.role == bindparam("role"),
    AssignmentRow.type == AssignmentType.ELIGIBLE.value, *_in_window(_NOW),
).order_by(AssignmentRow.ends_at.is_(None).desc(), AssignmentRow.ends_at.desc()))

# ``eligibilities``: the eligible assignments of these people and roles (a grant batch's).
_ELIGIBILITIES = PreparedLoad(select(AssignmentRow).where(
    AssignmentRow.email.in_(bindparam("emails", expanding=True)),
    AssignmentRow.role.in_(bindparam("roles", expanding=True)),
    AssignmentRow.type == AssignmentType.ELIGIBLE.value, *_in_window(_NOW)))


async def eligible_roles(session: AsyncSession, email: str, now: datetime) -> list[str]:
    result = await run(session, _ELIGIBLE_ROLES, {"email": email, "now": now})
    return sorted(set(result.scalars()))


async def eligibility(
    session: AsyncSession, email: str, role: str, now: datetime
) -> AssignmentRow | None:
    found = await load(session, _ELIGIBILITY, {"email": email, "role": role, "now": now})
    return found[0] if found else None  # the longest-lasting one (a permanent one first)


async def eligibilities(session: AsyncSession, slots: Sequence[tuple[str, str]],
                        now: datetime) -> dict[tuple[str, str], AssignmentRow]:
    """``eligibility`` for many (email, role) slots in one query: each slot's
    longest-lasting eligible assignment, for the slots that have one."""
    wanted = set(slots)
    found: dict[tuple[str, str], AssignmentRow] = {}
    if not wanted:
        return found
    for row in await load(session, _ELIGIBILITIES, {
            "emails": sorted({email for email, _ in wanted}),
            "roles": sorted({role for _, role in wanted}), "now": now}):
        slot = (row.email, row.role)
        if slot in wanted and (slot not in found or _lasts_longer(row, found[slot])):
            found[slot] = row
    return found


def _lasts_longer(one: AssignmentRow, other: AssignmentRow) -> bool:
    if other.ends_at is None:
        return False
    return one.ends_at is None or one.ends_at > other.ends_at


def _open_query(by_email: bool, by_role: bool) -> Select[RequestRow]:
    query = select(RequestRow).where(RequestRow.state.in_(bindparam("states", expanding=True)))
    if by_email:
        query = query.where(RequestRow.email == bindparam("email"))
    if by_role:
        query = query.where(RequestRow.role == bindparam("role"))
    query = query.where(
        ~((RequestRow.kind == RequestKind.EXTENSION.value)
          & (RequestRow.state == RequestState.APPROVED.value))
    )
    return query.order_by(RequestRow.requested_at)


_OPEN = {(by_email, by_role): PreparedLoad(_open_query(by_email, by_role))
         for by_email in (False, True) for by_role in (False, True)}


async def open_requests(
    session: AsyncSession, *, email: str | None = None, role: str | None = None,
    states: frozenset[RequestState] = OPEN_STATES,
) -> list[RequestRow]:
    params: dict[str, object] = {"states": sorted(s.value for s in states)}
    if email is not None:
        params["email"] = email
    if role is not None:
        params["role"] = role
    return await load(session, _OPEN[email is not None, role is not None], params)


async def active_activation(session: AsyncSession, email: str, role: str) -> RequestRow | None:
    """The person's active grant of ``role`` that ends last (what deactivate/extend act on)."""
    rows = await open_requests(session, email=email, role=role,
                               states=frozenset({RequestState.ACTIVE}))
    return last_ending(rows)


def last_ending(rows: Sequence[RequestRow]) -> RequestRow | None:
    """Of ``rows``, the active grant (not an extension) that ends last (a permanent one
    first): ``active_activation`` over rows already read."""
    rows = [r for r in rows if r.state == RequestState.ACTIVE.value
            and r.kind != RequestKind.EXTENSION.value]
    if not rows:
        return None
    far = datetime.max.replace(tzinfo=rows[0].requested_at.tzinfo)
    return max(rows, key=lambda r: r.expires_at or far)
