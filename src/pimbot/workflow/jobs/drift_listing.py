"""Drift for providers that list who holds a grant: the holders against pimbot's records.

A holder is pimbot's when a live grant record (granting, granted, revoking, or revoked since
the listing began) of the same provider and parameters names it: by the provider's key from
the record's ref (an object id, a login) or by the record's email. Everyone else holds it
without an activation. Under ``drift: revoke`` such a holder is removed unless ``allow:``
names them, after the records are read once more (a grant that began meanwhile is pimbot's);
allow-listed holders are never touched nor reported (they are expected: break-glass
accounts, service principals). A granted record no holder matches is a grant gone missing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from pimbot.domain.model import Role
from pimbot.providers.drift import DriftMode, DriftSettings
from pimbot.providers.holders import Holder, HolderListing
from pimbot.store.tables import GrantRow, GrantState
from pimbot.workflow.context import Context
from pimbot.workflow.jobs.drift import MISSING, STANDING, Finding
from pimbot.workflow.lifecycle.grants import target_of

log = logging.getLogger(__name__)

LIVE = (GrantState.GRANTING.value, GrantState.GRANTED.value, GrantState.REVOKING.value)


def _canonical(grant: Mapping[str, Any]) -> str:
    return json.dumps(grant, sort_keys=True, separators=(",", ":"), default=str)


async def compare_listing(ctx: Context, name: str, provider: HolderListing,
                          settings: DriftSettings, roles: list[Role]) -> list[Finding]:
    by_grant: dict[str, tuple[dict[str, Any], list[Role]]] = {}
    for role in roles:
        by_grant.setdefault(_canonical(role.grant), (dict(role.grant), []))[1].append(role)
    findings: list[Finding] = []
    for grant, sharing in by_grant.values():
        started = ctx.clock.now()
        try:
            holders = await provider.holders(grant)
        except Exception as exc:  # reported in the log; the next interval tries again
            log.warning("drift: listing %s's holders of %s failed: %s", name, grant, exc)
            continue
        records = await _records(ctx, name, grant, started)
        findings += _missing(provider, records, holders, tuple(sharing))
        for holder in holders:
            if _pimbots(provider, records, holder) or settings.allows(holder.known_as()):
                continue
            finding = Finding(tuple(sharing), _shown(holder), STANDING,
                              detail=(("holder", holder.key), ("kind", holder.kind.value)))
            if settings.mode is DriftMode.REVOKE:
                finding = await _remove(ctx, name, provider, grant, holder, finding)
            findings.append(finding)
    return findings


async def _records(ctx: Context, provider: str, grant: Mapping[str, Any],
                   since: datetime) -> list[GrantRow]:
    async with ctx.db.read() as session:
        rows = (await session.execute(select(GrantRow).where(
            GrantRow.provider == provider,
            or_(GrantRow.state.in_(LIVE), GrantRow.revoked_at >= since)))).scalars().all()
    wanted = _canonical(grant)
    return [row for row in rows if _canonical(row.params) == wanted]


def _pimbots(provider: HolderListing, records: list[GrantRow], holder: Holder) -> bool:
    for record in records:
        if record.email.lower() in holder.emails:
            return True
        if provider.holder_key(target_of(record), record.ref) == holder.key:
            return True
    return False


def _missing(provider: HolderListing, records: list[GrantRow], holders: list[Holder],
             roles: tuple[Role, ...]) -> list[Finding]:
    found = []
    for record in records:
        if record.state != GrantState.GRANTED.value:
            continue  # in flight, or being revoked: not missing
        key = provider.holder_key(target_of(record), record.ref)
        if not any(h.key == key or record.email.lower() in h.emails for h in holders):
            found.append(Finding(roles, record.email, MISSING,
                                 detail=(("grant", record.id),)))
    return found


def _shown(holder: Holder) -> str:
    email = next(iter(sorted(holder.emails)), "")
    name = holder.name if not email or email == holder.name.lower() else \
        f"{holder.name} ({email})"
    return name if holder.kind.value in ("user", "login") else f"{holder.kind.value} {name}"


async def _remove(ctx: Context, name: str, provider: HolderListing, grant: dict[str, Any],
                  holder: Holder, finding: Finding) -> Finding:
    """``drift: revoke``: take it away, unless a grant of pimbot's has begun meanwhile."""
    if _pimbots(provider, await _records(ctx, name, grant, ctx.clock.now()), holder):
        return finding  # reported as seen; pimbot's own grant now covers them
    try:
        await provider.remove_holder(grant, holder)
    except Exception as exc:
        log.warning("drift: removing %s from %s failed: %s", holder.key, name, exc)
        return Finding(finding.roles, finding.who, finding.what, "drift.revoke_failed",
                       "failed", (*finding.detail, ("error", str(exc)[:500])))
    log.info("drift: removed %s (%s) from %s: not granted by pimbot", holder.name,
             holder.key, name)
    return Finding(finding.roles, finding.who, finding.what, "drift.revoked", "revoked",
                   finding.detail)
