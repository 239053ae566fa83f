"""Drift detection: access at a provider that pimbot did not grant, and grants gone missing.

Each provider with ``drift: alert`` or ``drift: revoke`` (``pimbot.providers.drift``: the
default for postgres and the Microsoft providers) is checked every ``reconcile_every``
(15 minutes by default) by one ``drift_check`` job per provider and interval across all
replicas. Providers that can list who holds a grant (``HolderListing``) are compared with
pimbot's live grant records (``drift_listing``): anyone holding it without one is audited
(``drift.detected``) and reported, and under ``drift: revoke`` removed (``drift.revoked``),
unless ``allow:`` names them. Other providers are asked with ``check`` about everyone
assigned the role. Findings go to the roles' notify channels, or to the admins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from pimbot.domain.model import Role
from pimbot.ports import GrantTarget, Provider
from pimbot.providers.drift import DriftMode, DriftSettings, drift_settings
from pimbot.providers.holders import HolderListing
from pimbot.store.tables import AssignmentRow, GrantRow, GrantState
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.grants import target_of
from pimbot.workflow.notices.outbox import JobKind, schedule

log = logging.getLogger(__name__)

STANDING = "holds it at the provider without an activation"
MISSING = "has an active activation but no grant at the provider"


@dataclass(frozen=True)
class Finding:
    roles: tuple[Role, ...]  # every role granting what was found (they may share a grant)
    who: str  # the person or holder, as people read it
    what: str  # STANDING, MISSING, …
    action: str = "drift.detected"
    outcome: str = "alert"
    detail: tuple[tuple[str, str], ...] = ()


def watched(ctx: Context) -> dict[str, DriftSettings]:
    """Providers whose drift is watched and that back at least one role."""
    used = {role.provider for role in ctx.policy.roles.values()}
    found = {}
    for name, config in ctx.policy.providers.items():
        settings = drift_settings(config)
        if name in used and settings.mode is not DriftMode.OFF:
            found[name] = settings
    return found


def watched_roles(ctx: Context, provider: str | None = None) -> list[Role]:
    names = watched(ctx)
    return [role for role in ctx.policy.roles.values() if role.provider in names
            and (provider is None or role.provider == provider)]


async def schedule_next(ctx: Context, after: datetime, provider: str | None = None) -> None:
    """One check per provider and interval across all replicas (the slot is the key)."""
    for name, settings in watched(ctx).items():
        if provider is not None and name != provider:
            continue
        every = settings.every.total_seconds()
        slot = int(after.timestamp() // every) + 1
        due = datetime.fromtimestamp(slot * every, tz=after.tzinfo)
        async with ctx.db.transaction() as session:
            await schedule(session, JobKind.DRIFT_CHECK, due, dedupe_key=f"drift:{name}:{slot}",
                           provider=name)


async def check_drift(ctx: Context, provider: str | None = None) -> int:
    """Compare the watched providers (or one) with pimbot's records; returns the findings.
    A job without a provider (written by an older pimbot) checks them all."""
    from pimbot.workflow.jobs.drift_listing import compare_listing

    now = ctx.clock.now()
    findings: list[Finding] = []
    for name, settings in watched(ctx).items():
        if provider is not None and name != provider:
            continue
        instance = ctx.providers.get(name)
        if instance is None:
            continue
        roles = watched_roles(ctx, name)
        if isinstance(instance, HolderListing):
            findings += await compare_listing(ctx, name, instance, settings, roles)
        else:
            findings += await _compare_checks(ctx, instance, roles, now)
    await report(ctx, findings)
    await schedule_next(ctx, now, provider)
    return len(findings)


async def _compare_checks(ctx: Context, provider: Provider, roles: list[Role],
                          now: datetime) -> list[Finding]:
    """For providers that cannot list: ask ``check`` about everyone assigned the role."""
    findings: list[Finding] = []
    for role in roles:
        async with ctx.db.read() as session:
            people = set((await session.execute(select(AssignmentRow.email).where(
                AssignmentRow.role == role.name, AssignmentRow.removed_at.is_(None)))).scalars())
            granted = {g.email: g for g in (await session.execute(select(GrantRow).where(
                GrantRow.role == role.name,
                GrantRow.state == GrantState.GRANTED.value))).scalars()}
        for email in sorted(people | set(granted)):
            # What pimbot granted is checked as it was granted; anyone else with the role's
            # current parameters.
            target = target_of(granted[email]) if email in granted else GrantTarget(
                "drift-check", email, role.name, dict(role.grant), now, None)
            try:
                held = await provider.check(target)
            except Exception as exc:  # a failing check is reported once per run, not fatal
                log.warning("drift check of %s for %s failed: %s", role.name, email, exc)
                continue
            if held and email not in granted:
                findings.append(Finding((role,), email, STANDING))
            elif email in granted and not held:
                findings.append(Finding((role,), email, MISSING))
    return findings


async def report(ctx: Context, findings: list[Finding]) -> None:
    """Audit each finding and tell the roles' notify channels (the admins when none)."""
    if not findings:
        return
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        for finding in findings:
            names = ", ".join(role.name for role in finding.roles)
            await record(ctx, session, "pimbot", finding.action, names, finding.outcome,
                         user=finding.who, finding=finding.what, **dict(finding.detail))
            channels = sorted({c for role in finding.roles for c in role.notify})
            audiences = [f"channel:{c}" for c in channels] or [
                f"user:{admin}" for admin in ctx.policy.admins]
            for audience in audiences:
                await schedule(session, JobKind.NOTIFY, now, audience=audience,
                               view=View.PROBLEM.value, request_id="",
                               title=_title(names, finding), text=_advice(finding))


def _title(names: str, finding: Finding) -> str:
    if finding.outcome == "revoked":
        return f"Drift on {names}: removed {finding.who}, who {finding.what}"
    return f"Drift on {names}: {finding.who} {finding.what}"


def _advice(finding: Finding) -> str:
    if finding.outcome == "revoked":
        return "pimbot did not grant this and removed it (drift: revoke)."
    if finding.outcome == "failed":
        return "pimbot did not grant this and could not remove it; check the provider."
    if finding.what == MISSING:
        return "pimbot granted this, but the provider no longer shows it; check the provider."
    return "pimbot did not grant this; check the provider."
