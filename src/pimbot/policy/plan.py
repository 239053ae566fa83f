"""Compare a policy with the store (plan) and make the store match it (apply).

The store keeps the applied roles (``roles``), group members (``group_members``) and the
policy's assignments (``assignments`` rows with ``source == "policy"``). Assignments made by
admins from chat (``source == "admin"``) are never touched. Removed assignments are kept with
``removed_at`` set, never deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.approval_rules import describe_rules
from pimbot.domain.durations import format_duration
from pimbot.domain.ids import new_row_id
from pimbot.domain.model import Assignment, Policy, Role
from pimbot.policy.live_grants import affected_grants, refuse_provider_removal
from pimbot.policy.role_spec import canonical, role_spec, spec_differences
from pimbot.ports import Clock
from pimbot.store.audit_batch import NewEvent, append_events
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, GroupMemberRow, RoleRow

POLICY_SOURCE = "policy"
SLICE = 1000  # assignment rows or audit events written between two turns of the event loop


class ChangeKind(StrEnum):
    ROLE = "role"
    GROUP = "group"
    ASSIGNMENT = "assignment"
    GRANT = "grant"  # a live grant the change affects: revoked with its recorded parameters


class ChangeAction(StrEnum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    HELD = "held"  # the file lists it, but an access review removed it: not added back


_PAST = {ChangeAction.ADD: "added", ChangeAction.CHANGE: "changed", ChangeAction.REMOVE: "removed",
         ChangeAction.HELD: "held"}
_SIGN = {ChangeAction.ADD: "+", ChangeAction.CHANGE: "~", ChangeAction.REMOVE: "-",
         ChangeAction.HELD: "!"}


@dataclass(frozen=True)
class Change:
    kind: str  # ChangeKind
    action: str  # ChangeAction
    key: str  # role or group name; "EMAIL ROLE TYPE" for an assignment
    detail: str

    @property
    def audit_action(self) -> str:
        """``policy.role_added``, ``policy.assignment_removed``, …"""
        return f"policy.{self.kind}_{_PAST[ChangeAction(self.action)]}"


Apply = Callable[[AsyncSession, datetime], Awaitable[None]]


@dataclass(frozen=True)
class _Step:
    """One change, its audit detail, and how it is applied: ``apply`` runs alone (roles,
    groups: a handful); ``row`` is an assignment write gathered into one bulk statement
    with the others of its kind (a policy may hold thousands)."""

    change: Change
    audit: dict[str, Any]
    apply: Apply | None = None
    row: _RowWrite | None = None


@dataclass(frozen=True)
class _RowWrite:
    """An ``assignments`` row to insert (``values`` lack its new ``id``) or to update by its
    ``id``; the column named by ``stamp`` gets the time of the apply."""

    values: dict[str, Any]
    insert: bool = False
    stamp: str | None = None

    def at(self, now: datetime) -> dict[str, Any]:
        values = {**self.values, self.stamp: now} if self.stamp else dict(self.values)
        return {"id": new_row_id("a"), **values} if self.insert else values


async def plan_policy(db: Database, policy: Policy) -> list[Change]:
    """What ``apply_policy`` would change, without changing anything. Raises
    ProviderStillInUse when the policy removes a provider that still backs grants."""
    async with db.read() as session:
        await refuse_provider_removal(session, policy)
        changes = [step.change for step in await _steps(session, policy)]
        return changes + await _grant_changes(session, policy)


async def _grant_changes(session: AsyncSession, policy: Policy) -> list[Change]:
    return [Change(ChangeKind.GRANT, ChangeAction.REMOVE, f"{g.email} {g.role}",
                   f"{g.why}; revoked with the parameters it was granted with")
            for g in await affected_grants(session, policy)]


async def apply_policy(db: Database, policy: Policy, clock: Clock) -> list[Change]:
    """Make the store match the policy in one write transaction; audit every change.

    The live grants the change affects are listed (kind ``grant``) but ended by the workflow
    (``pimbot.workflow.lifecycle.stranded``), which revokes them with their recorded
    parameters and tells their holders why. Refuses (ProviderStillInUse) to remove a provider
    that still backs grants not yet revoked."""
    async with db.transaction() as session:
        await refuse_provider_removal(session, policy)
        now = clock.now()
        grant_changes = await _grant_changes(session, policy)
        steps = await _steps(session, policy)
        done = [step for step in steps if step.change.action != ChangeAction.HELD]
        # HELD changes nothing; plan and apply list it until the file is edited
        for step in done:
            if step.apply is not None:
                await step.apply(session, now)
        await _let_the_loop_answer()
        await _write_rows(session, now, [step.row for step in done if step.row is not None])
        events = [NewEvent(actor="policy", action=step.change.audit_action,
                           subject=step.change.key,
                           detail={"change": step.change.detail, **step.audit})
                  for step in done]
        for start in range(0, len(events), SLICE):  # the chain continues across slices
            await append_events(db, session, now, events[start:start + SLICE])
            await _let_the_loop_answer()
    return [step.change for step in steps] + grant_changes


async def _let_the_loop_answer() -> None:
    """Between the apply's CPU-heavy slices (at 5,000 assignments the whole apply is 1-2 s):
    on SQLite the statements run on the event loop's thread, so ``/healthz`` and ``/readyz``
    would wait for the whole apply; a sleep, not ``sleep(0)``, for a request to be read,
    handled and answered in between."""
    await asyncio.sleep(0.005)  # a few loop turns: a request read, handled, answered


async def _write_rows(session: AsyncSession, now: datetime, writes: list[_RowWrite]) -> None:
    """The assignment inserts as one multi-row INSERT, the updates as one executemany."""
    await session.flush()
    inserts = [w.at(now) for w in writes if w.insert]
    updates = [w.at(now) for w in writes if not w.insert]
    for start in range(0, len(inserts), SLICE):  # SQLAlchemy's own page of VALUES
        await session.execute(insert(AssignmentRow), inserts[start:start + SLICE])
        await _let_the_loop_answer()
    if updates:
        await session.execute(update(AssignmentRow), updates)


def format_plan(changes: list[Change]) -> str:
    """One line per change (``+ role x``, ``~ assignment …``, ``- group …``) and a summary."""
    if not changes:
        return "No changes."
    lines = [
        f"{_SIGN[ChangeAction(c.action)]} {c.kind} {c.key}" + (f" ({c.detail})" if c.detail else "")
        for c in changes
    ]
    counts = {action: sum(c.action == action for c in changes) for action in ChangeAction}
    summary = (
        f"{counts[ChangeAction.ADD]} to add, {counts[ChangeAction.CHANGE]} to change, "
        f"{counts[ChangeAction.REMOVE]} to remove."
    )
    if counts[ChangeAction.HELD]:
        summary += (f" {counts[ChangeAction.HELD]} held: removed by an access review, not "
                    "added back until the file drops them (then a new entry is a new "
                    "decision).")
    lines.append(summary)
    return "\n".join(lines)


async def _steps(session: AsyncSession, policy: Policy) -> list[_Step]:
    return (
        await _role_steps(session, policy)
        + await _group_steps(session, policy)
        + await _assignment_steps(session, policy)
    )


# --- roles ----------------------------------------------------------------------------------


async def _role_steps(session: AsyncSession, policy: Policy) -> list[_Step]:
    stored = {row.name: row.spec for row in (await session.scalars(select(RoleRow))).all()}
    steps: list[_Step] = []
    for name, role in policy.roles.items():
        spec = role_spec(role)
        old = stored.get(name)
        if old is None:
            change = Change(ChangeKind.ROLE, ChangeAction.ADD, name, _role_summary(role))
            steps.append(_Step(change, {"spec": spec}, _upsert_role(name, spec)))
        elif canonical(old) != canonical(spec):
            detail = "; ".join(spec_differences(old, spec))
            change = Change(ChangeKind.ROLE, ChangeAction.CHANGE, name, detail)
            steps.append(_Step(change, {"before": old, "spec": spec}, _upsert_role(name, spec)))
    for name, old in stored.items():
        if name not in policy.roles:
            change = Change(ChangeKind.ROLE, ChangeAction.REMOVE, name, "")
            steps.append(_Step(change, {"before": old}, _delete_role(name)))
    return steps


def _role_summary(role: Role) -> str:
    parts = [f"provider {role.provider}", f"max {format_duration(role.max_duration)}"]
    if role.approval.required:
        parts.append("approval by " + ", ".join(role.approval.approvers))
    if role.breakglass.allowed:
        parts.append("break-glass")
    parts.extend(describe_rules(role))
    return ", ".join(parts)


def _upsert_role(name: str, spec: dict[str, Any]) -> Apply:
    async def run(session: AsyncSession, now: datetime) -> None:
        row = await session.get(RoleRow, name)
        if row is None:
            session.add(RoleRow(name=name, spec=spec, updated_at=now))
        else:
            row.spec = spec
            row.updated_at = now

    return run


def _delete_role(name: str) -> Apply:
    async def run(session: AsyncSession, now: datetime) -> None:
        await session.execute(delete(RoleRow).where(RoleRow.name == name))

    return run


# --- groups ---------------------------------------------------------------------------------


async def _group_steps(session: AsyncSession, policy: Policy) -> list[_Step]:
    stored: dict[str, set[str]] = {}
    for row in (await session.scalars(select(GroupMemberRow))).all():
        stored.setdefault(row.group, set()).add(row.email)
    wanted = {name: set(members) for name, members in policy.groups.items() if members}
    steps: list[_Step] = []
    for name in sorted(wanted.keys() | stored.keys()):
        old, new = stored.get(name, set()), wanted.get(name, set())
        if old == new:
            continue
        if not old:
            action, detail = ChangeAction.ADD, ", ".join(sorted(new))
        elif not new:
            action, detail = ChangeAction.REMOVE, ""
        else:
            changed = [f"+{e}" for e in sorted(new - old)] + [f"-{e}" for e in sorted(old - new)]
            action, detail = ChangeAction.CHANGE, ", ".join(changed)
        audit = {"before": sorted(old), "members": sorted(new)}
        change = Change(ChangeKind.GROUP, action, name, detail)
        steps.append(_Step(change, audit, _replace_members(name, sorted(new))))
    return steps


def _replace_members(name: str, members: list[str]) -> Apply:
    async def run(session: AsyncSession, now: datetime) -> None:
        await session.execute(delete(GroupMemberRow).where(GroupMemberRow.group == name))
        session.add_all(GroupMemberRow(group=name, email=email) for email in members)

    return run


# --- assignments ----------------------------------------------------------------------------


Identity = tuple[str, str, str]


async def _assignment_steps(session: AsyncSession, policy: Policy) -> list[_Step]:
    query = (
        select(AssignmentRow)
        .where(AssignmentRow.source == POLICY_SOURCE, AssignmentRow.removed_at.is_(None))
        .order_by(AssignmentRow.created_at, AssignmentRow.id)
    )
    stored: dict[Identity, list[AssignmentRow]] = {}
    for row in (await session.scalars(query)).all():
        stored.setdefault((row.email, row.role, row.type), []).append(row)
    wanted = {(a.user, a.role, str(a.type)): a for a in policy.assignments}
    held = await _held_by_review(session)
    steps: list[_Step] = []
    for identity, row in held.items():
        if identity not in wanted:  # the file was edited to drop it: the hold is over
            change = Change(ChangeKind.ASSIGNMENT, ChangeAction.CHANGE, " ".join(identity),
                            f"removal by access review {row.removed_by_review} now in the file")
            steps.append(_Step(change, {"id": row.id},
                               row=_RowWrite({"id": row.id, "review_hold": False})))
    for identity, assignment in wanted.items():
        rows = stored.pop(identity, [])
        window = _window(assignment.starts_at, assignment.ends_at)
        if not rows and identity in held:
            review = held[identity].removed_by_review
            change = Change(ChangeKind.ASSIGNMENT, ChangeAction.HELD, " ".join(identity),
                            f"removed by access review {review}; edit the policy file")
            steps.append(_Step(change, {"id": held[identity].id}))
            continue
        if not rows:
            change = Change(ChangeKind.ASSIGNMENT, ChangeAction.ADD, " ".join(identity), window)
            steps.append(_Step(change, _audit(assignment), row=_insert_assignment(assignment)))
            continue
        first, *extra = rows
        stored[identity] = extra
        if (first.starts_at, first.ends_at) != (assignment.starts_at, assignment.ends_at):
            detail = f"{_window(first.starts_at, first.ends_at) or 'always'} → {window or 'always'}"
            change = Change(ChangeKind.ASSIGNMENT, ChangeAction.CHANGE, " ".join(identity), detail)
            audit = {"id": first.id, **_audit(assignment)}
            steps.append(_Step(change, audit, row=_RowWrite({
                "id": first.id, "starts_at": assignment.starts_at,
                "ends_at": assignment.ends_at})))
    for identity, rows in stored.items():
        for row in rows:
            detail = _window(row.starts_at, row.ends_at)
            change = Change(ChangeKind.ASSIGNMENT, ChangeAction.REMOVE, " ".join(identity), detail)
            steps.append(_Step(change, {"id": row.id},
                               row=_RowWrite({"id": row.id}, stamp="removed_at")))
    return steps


async def _held_by_review(session: AsyncSession) -> dict[Identity, AssignmentRow]:
    rows = (await session.scalars(select(AssignmentRow).where(
        AssignmentRow.source == POLICY_SOURCE, AssignmentRow.review_hold.is_(True))
        .order_by(AssignmentRow.created_at))).all()
    return {(row.email, row.role, row.type): row for row in rows}


def _window(starts_at: datetime | None, ends_at: datetime | None) -> str:
    parts = []
    if starts_at is not None:
        parts.append(f"from {_when(starts_at)}")
    if ends_at is not None:
        parts.append(f"until {_when(ends_at)}")
    return " ".join(parts)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _audit(assignment: Assignment) -> dict[str, Any]:
    return {
        "user": assignment.user,
        "role": assignment.role,
        "type": str(assignment.type),
        "starts_at": _when(assignment.starts_at) if assignment.starts_at else None,
        "ends_at": _when(assignment.ends_at) if assignment.ends_at else None,
    }


def _insert_assignment(assignment: Assignment) -> _RowWrite:
    return _RowWrite(insert=True, stamp="created_at", values={
        "email": assignment.user,
        "role": assignment.role,
        "type": str(assignment.type),
        "starts_at": assignment.starts_at,
        "ends_at": assignment.ends_at,
        "source": POLICY_SOURCE,
        "created_by": POLICY_SOURCE,
        "removed_at": None,
        "removed_by_review": None,
        "review_hold": False,
    })
