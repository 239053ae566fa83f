"""Drift detection: grants that exist at a provider without an activation, and the reverse.

Roles whose provider is configured with ``drift: alert`` are checked every
``DRIFT_INTERVAL``: everyone eligible for the role (or assigned it) is looked up with the
provider's ``check``. Standing access found outside pimbot, or an activation whose grant has
gone missing, is audited and reported to the role's notify channels (or, if it has none,
to the admins).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from pimbot.domain.model import Role
from pimbot.ports import GrantTarget
from pimbot.store.tables import AssignmentRow, GrantRow, GrantState
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.grants import target_of
from pimbot.workflow.notices.outbox import JobKind, schedule

log = logging.getLogger(__name__)

DRIFT_INTERVAL = timedelta(minutes=15)


def watched_roles(ctx: Context) -> list[Role]:
    providers = ctx.policy.providers

    def alerts(name: str) -> bool:
        config = providers[name]
        default = "alert" if config.type == "postgres" else "ignore"
        return bool(config.settings.get("drift", default) == "alert")

    return [role for role in ctx.policy.roles.values()
            if role.provider in providers and alerts(role.provider)]


async def schedule_next(ctx: Context, after: datetime) -> None:
    """One drift check per interval across all replicas (the dedupe key is the slot)."""
    if not watched_roles(ctx):
        return
    slot = int(after.timestamp() // DRIFT_INTERVAL.total_seconds()) + 1
    due = datetime.fromtimestamp(slot * DRIFT_INTERVAL.total_seconds(), tz=after.tzinfo)
    async with ctx.db.transaction() as session:
        await schedule(session, JobKind.DRIFT_CHECK, due, dedupe_key=f"drift:{slot}")


async def check_drift(ctx: Context) -> int:
    """Compare every watched role's holders with the provider; returns what was reported."""
    now = ctx.clock.now()
    findings: list[tuple[Role, str, str]] = []
    for role in watched_roles(ctx):
        async with ctx.db.read() as session:
            people = set((await session.execute(select(AssignmentRow.email).where(
                AssignmentRow.role == role.name, AssignmentRow.removed_at.is_(None)))).scalars())
            granted = {g.email: g for g in (await session.execute(select(GrantRow).where(
                GrantRow.role == role.name,
                GrantRow.state == GrantState.GRANTED.value))).scalars()}
        provider = ctx.provider(role)
        active = set(granted)
        for email in sorted(people | active):
            # What pimbot granted is checked as it was granted; anyone else with the role's
            # current parameters.
            target = target_of(granted[email]) if email in granted else GrantTarget(
                "drift-check", email, role.name, dict(role.grant), now, None)
            try:
                held = await provider.check(target)
            except Exception as exc:  # a failing check is reported once per run, not fatal
                log.warning("drift check of %s for %s failed: %s", role.name, email, exc)
                continue
            if held and email not in active:
                findings.append((role, email, "holds it at the provider without an activation"))
            elif email in active and not held:
                findings.append((role, email, "has an active activation but no grant at the "
                                              "provider"))
    await _report(ctx, findings, now)
    await schedule_next(ctx, now)
    return len(findings)


async def _report(ctx: Context, findings: list[tuple[Role, str, str]], now: datetime) -> None:
    if not findings:
        return
    async with ctx.db.transaction() as session:
        for role, email, what in findings:
            await record(ctx, session, "pimbot", "drift.detected", role.name, "alert",
                         user=email, finding=what)
            audiences = [f"channel:{c}" for c in role.notify] or [
                f"user:{admin}" for admin in ctx.policy.admins]  # no channel: tell the admins
            for audience in audiences:
                await schedule(session, JobKind.NOTIFY, now, audience=audience,
                               view=View.PROBLEM.value, request_id="",
                               title=f"Drift on {role.name}: {email} {what}",
                               text="pimbot did not grant this; check the provider.")
