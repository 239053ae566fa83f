"""Replicas started at the same instant on one PostgreSQL database migrate and apply the
policy once: no crash, no duplicate roles, assignments or audit events."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pimbot.secretbox import generate_key
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, AuditEventRow, ReplicaRow, RoleRow
from replica_process import replica_env, start_replicas

POLICY = """\
admins: [sec-lead@example.com]
providers:
  nothing: {type: noop}
roles:
  r1: {provider: nothing, max_duration: 4h}
  r2: {provider: nothing, max_duration: 4h}
  r3: {provider: nothing, max_duration: 4h}
assignments:
  - {user: bob@example.com, role: r1, type: eligible}
  - {user: bob@example.com, role: r2, type: active}
  - {user: carol@example.com, role: r3, type: eligible}
"""


@pytest.mark.postgres
async def test_three_replicas_started_together_apply_the_policy_once(
    tmp_path: Path, empty_pg: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = replica_env(tmp_path, empty_pg, policy, PIMBOT_SECRET_KEY=generate_key())
    replicas = await start_replicas(tmp_path, env, 3)
    try:
        for replica in replicas:
            await replica.wait_ready()
        db = Database(empty_pg)
        try:
            async with db.read() as session:
                roles = await session.scalar(select(func.count()).select_from(RoleRow))
                assignments = await session.scalar(
                    select(func.count()).select_from(AssignmentRow))
                actions = dict((await session.execute(
                    select(AuditEventRow.action, func.count()).group_by(AuditEventRow.action)
                )).all())
                live = await session.scalar(select(func.count()).select_from(ReplicaRow))
        finally:
            await db.dispose()
        assert (roles, assignments) == (3, 3)
        assert actions["policy.role_added"] == 3
        assert actions["policy.assignment_added"] == 3
        assert actions["assignment.scheduled"] == 1  # the active assignment: granted once
        assert actions.get("request.granted", 0) <= 1
        assert live == 3
        for replica in replicas:
            assert await replica.stop() == 0, replica.output()
            assert "Traceback" not in replica.output(), replica.output()
    finally:
        for replica in replicas:
            await replica.reap()
