"""A revoke that keeps failing: retried with capped backoff until the provider confirms,
the role's channels alerted at the first failure and hourly after (not at every failure),
"revoke pending" in status and the App Home, and nothing marked revoked early."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, GrantRow, GrantState, RequestRow
from pimbot.testing.fakes import RecordingProvider
from pimbot.workflow.actor import Actor

from .harness import Pim, make_pim, request_id_of

BOB = "bob@example.com"
POLICY = """
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  ops:
    provider: demo
    max_duration: 8h
    require_justification: false
    notify: ["#sec-alerts"]
  quiet:
    provider: demo
    max_duration: 8h
    require_justification: false
assignments:
  - {user: bob@example.com, role: ops, type: eligible}
  - {user: bob@example.com, role: quiet, type: eligible}
"""
FAILING = "Revoking ops from bob@example.com is failing; retrying"


async def _grant_of(pim: Pim, request_id: str) -> tuple[GrantRow, RequestRow]:
    async with pim.core.ctx.db.read() as session:
        row = await session.get(RequestRow, request_id)
        assert row is not None and row.grant_id is not None
        grant = await session.get(GrantRow, row.grant_id)
        assert grant is not None
        return grant, row


def _titles(pim: Pim, audience: str) -> list[str]:
    return [d.card.title for d in pim.chat.to(audience)]


async def test_a_failing_revoke_alerts_hourly_and_is_done_only_when_confirmed(
        db: Database) -> None:
    provider = RecordingProvider(fail_revokes=1_000_000)
    pim = await make_pim(db, POLICY, provider=provider)
    request = request_id_of(await pim.say(BOB, "activate ops for 1h"))
    await pim.say(BOB, "deactivate ops")
    assert _titles(pim, "channel:slack:#sec-alerts").count(FAILING) == 1  # the first failure

    status = (await pim.say(BOB, "status")).text
    assert "ops: ended, revoke pending at the provider (1 failed attempt(s)" in status, status
    assert "pimbot keeps retrying" in status and f"(request {request})" in status
    [home] = [c for c in await pim.core.home(Actor(BOB)) if request in c.context]
    assert "Revoke pending" in home.text

    for _ in range(3 * 60):  # three hours of retries, a minute at a time
        await pim.advance(timedelta(minutes=1))
        grant, row = await _grant_of(pim, request)
        assert grant.state == GrantState.REVOKING.value and grant.revoked_at is None
        assert row.revoked_at is None, "marked revoked before the provider confirmed it"

    async with db.read() as session:
        alerts = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "revoke.failing").order_by(AuditEventRow.seq))).scalars().all()
    times = [a.at for a in alerts]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert len(times) >= 3, times
    assert all(timedelta(hours=1) <= gap <= timedelta(hours=1, minutes=6) for gap in gaps), gaps
    assert grant.failures > 5 * len(times)  # retried far more often than it alerted
    assert _titles(pim, "channel:slack:#sec-alerts").count(FAILING) == len(times)

    provider.fail_revokes = 0  # the provider recovers
    await pim.advance(timedelta(minutes=6))
    grant, row = await _grant_of(pim, request)
    assert grant.state == GrantState.REVOKED.value and row.revoked_at is not None
    assert provider.unmatched() == {}
    assert "Revoked ops from bob@example.com at last (the provider confirmed it)" in _titles(
        pim, "channel:slack:#sec-alerts")
    assert "revoke pending" not in (await pim.say(BOB, "status")).text


async def test_a_role_without_channels_alerts_the_admins(db: Database) -> None:
    pim = await make_pim(db, POLICY, provider=RecordingProvider(fail_revokes=1))
    await pim.say(BOB, "activate quiet for 1h")
    await pim.say(BOB, "deactivate quiet")
    assert "Revoking quiet from bob@example.com is failing; retrying" in _titles(
        pim, "user:sec-lead@example.com")
