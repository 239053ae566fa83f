"""Plan and apply the policy into the store (SQLite and PostgreSQL through the ``db`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from pimbot.domain.model import Policy
from pimbot.policy import bundled_example_path, load_policy, parse_policy
from pimbot.policy.plan import Change, apply_policy, format_plan, plan_policy
from pimbot.store.audit_log import append_event, verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, AuditEventRow, GroupMemberRow, RoleRow
from pimbot.testing.fakes import FakeClock

EXAMPLE_TEXT = bundled_example_path().read_text()


def edited(old: str, new: str) -> Policy:
    assert old in EXAMPLE_TEXT
    return parse_policy(EXAMPLE_TEXT.replace(old, new))


def summary(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.key) for c in changes]


async def assignment_rows(db: Database) -> list[AssignmentRow]:
    async with db.read() as session:
        query = select(AssignmentRow).order_by(AssignmentRow.email, AssignmentRow.role)
        return list((await session.scalars(query)).all())


async def test_plan_on_an_empty_store_adds_everything_and_writes_nothing(db: Database) -> None:
    policy = load_policy(bundled_example_path())
    changes = await plan_policy(db, policy)
    assert summary(changes) == [
        ("add", "role", "prod-db-admin"),
        ("add", "role", "staging-deploy"),
        ("add", "role", "prod-logs"),
        ("add", "role", "billing-read"),
        ("add", "group", "dba-leads"),
        ("add", "assignment", "bob@example.com prod-db-admin eligible"),
        ("add", "assignment", "bob@example.com staging-deploy eligible"),
        ("add", "assignment", "bob@example.com billing-read eligible"),
        ("add", "assignment", "bob@example.com prod-logs eligible"),
        ("add", "assignment", "carol@example.com staging-deploy eligible"),
    ]
    assert await plan_policy(db, policy) == changes
    assert await assignment_rows(db) == []


async def test_apply_then_plan_shows_no_changes(db: Database) -> None:
    policy = load_policy(bundled_example_path())
    clock = FakeClock()
    planned = await plan_policy(db, policy)
    applied = await apply_policy(db, policy, clock)
    assert applied == planned
    assert await plan_policy(db, policy) == []
    assert await apply_policy(db, policy, clock) == []
    assert format_plan(await plan_policy(db, load_policy(bundled_example_path()))) == "No changes."

    async with db.read() as session:
        members = (await session.scalars(select(GroupMemberRow.email))).all()
        roles = (await session.scalars(select(RoleRow))).all()
        events = (await session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq))).all()
    assert sorted(members) == ["alice@example.com", "carol@example.com"]
    assert {r.name for r in roles} == set(policy.roles)
    rows = await assignment_rows(db)
    assert {(r.source, r.created_by, r.created_at) for r in rows} == {
        ("policy", "policy", clock.now())
    }
    assert [(e.actor, e.action, e.subject) for e in events] == [
        ("policy", f"policy.{c.kind}_added", c.key) for c in applied
    ]
    assert (await verify_chain(db)).ok


async def test_edits_show_as_changes_and_removals(db: Database) -> None:
    clock = FakeClock()
    await apply_policy(db, load_policy(bundled_example_path()), clock)
    policy = parse_policy(
        EXAMPLE_TEXT.replace("max_duration: 4h", "max_duration: 3h")
        .replace(
            "dba-leads: [alice@example.com, carol@example.com]", "dba-leads: [alice@example.com]"
        )
        .replace(
            "{user: bob@example.com, role: staging-deploy, type: eligible}",
            "{user: bob@example.com, role: staging-deploy, type: eligible, until: 2027-03-31}",
        )
        .replace("  - {user: carol@example.com, role: staging-deploy, type: eligible}\n", "")
    )
    changes = await plan_policy(db, policy)
    assert format_plan(changes).splitlines() == [
        "~ role prod-db-admin (max_duration: 4h → 3h)",
        "~ group dba-leads (-carol@example.com)",
        "~ assignment bob@example.com staging-deploy eligible "
        "(always → until 2027-04-01T00:00:00Z)",
        "- assignment carol@example.com staging-deploy eligible",
        "0 to add, 3 to change, 1 to remove.",
    ]

    clock.advance(timedelta(hours=1))
    assert await apply_policy(db, policy, clock) == changes
    assert await plan_policy(db, policy) == []
    rows = {(r.email, r.role): r for r in await assignment_rows(db)}
    carol = rows[("carol@example.com", "staging-deploy")]
    assert carol.removed_at == clock.now()  # kept, marked removed
    assert rows[("bob@example.com", "staging-deploy")].ends_at == datetime(2027, 4, 1, tzinfo=UTC)
    async with db.read() as session:
        stored = await session.get(RoleRow, "prod-db-admin")
        actions = (
            await session.scalars(select(AuditEventRow.action).order_by(AuditEventRow.seq))
        ).all()
    assert stored is not None and stored.spec["max_duration"] == "3h"
    assert stored.updated_at == clock.now()
    assert actions[-4:] == [
        "policy.role_changed",
        "policy.group_changed",
        "policy.assignment_changed",
        "policy.assignment_removed",
    ]


async def test_a_removed_assignment_comes_back_as_a_new_row(db: Database) -> None:
    clock = FakeClock()
    full = load_policy(bundled_example_path())
    without_carol = edited(
        "  - {user: carol@example.com, role: staging-deploy, type: eligible}\n", ""
    )
    await apply_policy(db, full, clock)
    await apply_policy(db, without_carol, clock)
    assert summary(await apply_policy(db, full, clock)) == [
        ("add", "assignment", "carol@example.com staging-deploy eligible")
    ]
    carol = [r for r in await assignment_rows(db) if r.email == "carol@example.com"]
    assert sorted(r.removed_at is None for r in carol) == [False, True]


async def test_removing_roles_and_groups(db: Database) -> None:
    clock = FakeClock()
    await apply_policy(db, load_policy(bundled_example_path()), clock)
    smaller = Policy(admins=("sec-lead@example.com",))
    changes = await apply_policy(db, smaller, clock)
    assert {(c.action, c.kind) for c in changes} == {
        ("remove", "role"),
        ("remove", "group"),
        ("remove", "assignment"),
    }
    async with db.read() as session:
        assert (await session.scalars(select(RoleRow))).all() == []
        assert (await session.scalars(select(GroupMemberRow))).all() == []
    assert all(r.removed_at is not None for r in await assignment_rows(db))
    assert await plan_policy(db, smaller) == []


async def test_admin_assignments_survive_apply(db: Database) -> None:
    clock = FakeClock()
    async with db.transaction() as session:
        session.add(
            AssignmentRow(
                id="aadmin1",
                email="dave@example.com",
                role="staging-deploy",
                type="eligible",
                starts_at=None,
                ends_at=None,
                source="admin",
                created_by="sec-lead@example.com",
                created_at=clock.now(),
                removed_at=None,
            )
        )
    changes = await apply_policy(db, load_policy(bundled_example_path()), clock)
    assert "dave@example.com staging-deploy eligible" not in {c.key for c in changes}
    await apply_policy(db, Policy(), clock)
    dave = [r for r in await assignment_rows(db) if r.email == "dave@example.com"]
    assert [(r.id, r.source, r.removed_at) for r in dave] == [("aadmin1", "admin", None)]


def test_format_plan_marks_each_kind_of_change() -> None:
    changes = [
        Change("role", "add", "prod-db-admin", "provider demo, max 4h"),
        Change("group", "remove", "dba-leads", ""),
    ]
    assert format_plan(changes) == (
        "+ role prod-db-admin (provider demo, max 4h)\n"
        "- group dba-leads\n"
        "1 to add, 0 to change, 1 to remove."
    )
    assert format_plan([]) == "No changes."


async def test_a_large_policy_applies_in_one_chain_and_again_changes_nothing(
    db: Database,
) -> None:
    people = [f"p{i}@example.com" for i in range(2500)]  # three slices of rows and events
    text = "\n".join([
        "admins: [a@example.com]", "providers:", "  demo: {type: noop}", "roles:",
        "  r1: {provider: demo, max_duration: 1h}", "assignments:",
        *(f"  - {{user: {p}, role: r1, type: eligible}}" for p in people)])
    clock = FakeClock()
    async with db.transaction() as session:  # an event already on the chain
        await append_event(db, session, at=clock.now(), actor="x", action="before")
    changes = await apply_policy(db, parse_policy(text), clock)
    assert len(changes) == 2501
    async with db.read() as session:
        rows = (await session.scalars(select(AssignmentRow))).all()
        events = (await session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq))).all()
    assert sorted(r.email for r in rows) == sorted(people) and len({r.id for r in rows}) == 2500
    # ids with room for a million rows: at 6 random characters a policy of 10,000 failed
    # on a duplicate assignments.id about one apply in twenty
    for row in rows:
        space = 31 ** (len(row.id) - 1)  # after the one-letter prefix
        assert 1_000_000 ** 2 / (2 * space) < 1e-5, row.id
    assert [e.seq for e in events] == list(range(1, 2503)), "one chain, no gaps"
    added = [e for e in events if e.action == "policy.assignment_added"]
    assert sorted(e.detail["user"] for e in added) == sorted(people)
    assert (await verify_chain(db)).ok
    assert await apply_policy(db, parse_policy(text), clock) == []

    edited = text.replace("  - {user: p0@example.com, role: r1, type: eligible}\n", "")
    edited = edited.replace("{user: p1@example.com, role: r1, type: eligible}",
                            "{user: p1@example.com, role: r1, type: eligible, until: 2030-01-01}")
    kinds = sorted(c.action for c in await apply_policy(db, parse_policy(edited), clock))
    assert kinds == ["change", "remove"]
    async with db.read() as session:
        p0 = await session.scalar(select(AssignmentRow).where(AssignmentRow.email == people[0]))
        p1 = await session.scalar(select(AssignmentRow).where(AssignmentRow.email == people[1]))
    assert p0 is not None and p0.removed_at is not None
    assert p1 is not None and p1.ends_at is not None
    assert (await verify_chain(db)).ok
