"""Many grants and expiries at once: each still happens exactly once, with its audit events
and notices, and no provider is called more than its ``max_concurrency`` at a time."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from pimbot.policy import PolicyError, parse_policy
from pimbot.ports import GrantTarget
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.testing.fakes import RecordingProvider

from .harness import make_pim

PEOPLE = [f"user{i}@example.com" for i in range(6)]
POLICY = "\n".join([
    "admins: [sec-lead@example.com]",
    "providers:",
    "  demo: {type: noop, max_concurrency: 2}",
    "roles:",
    "  deploy:",
    "    provider: demo",
    "    max_duration: 2h",
    "    require_justification: false",
    "    notify: ['#deploys']",
    "assignments:",
    *[f"  - {{user: {email}, role: deploy, type: eligible}}" for email in PEOPLE],
]) + "\n"


class SlowProvider(RecordingProvider):
    """Each call takes a moment; notes how many were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = Counter[str]()

    async def _slow(self, action: str) -> None:
        self.in_flight += 1
        self.peak[action] = max(self.peak[action], self.in_flight)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.in_flight -= 1

    async def grant(self, target: GrantTarget) -> str | None:
        await self._slow("grant")
        return await super().grant(target)

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        await self._slow("revoke")
        await super().revoke(target, ref)


async def test_a_burst_is_granted_and_revoked_once_each_within_the_provider_limit(
        db: Database) -> None:
    provider = SlowProvider()
    pim = await make_pim(db, POLICY, provider=provider)
    replies = await asyncio.gather(*(pim.say(email, "activate deploy for 1h")
                                     for email in PEOPLE))
    assert all(reply.ok for reply in replies), [reply.text for reply in replies]
    await pim.core.drain()
    granted = [call.activation_id for call in provider.actions("grant")]
    assert sorted(granted) == sorted(reply.subject for reply in replies)
    pim.clock.advance(timedelta(hours=1, seconds=1))
    await pim.core.drain()
    revoked = [call.activation_id for call in provider.actions("revoke")]
    assert sorted(revoked) == sorted(granted), "each grant revoked exactly once"
    assert provider.peak == {"grant": 2, "revoke": 2}, "concurrent, never above the limit"
    async with db.read() as session:
        states = (await session.scalars(select(RequestRow.state))).all()
        events = Counter((await session.scalars(select(AuditEventRow.action))).all())
    assert set(states) == {"expired"}
    assert events["grant.revoked"] == len(PEOPLE)
    assert (await verify_chain(db)).ok
    for email in PEOPLE:  # each requester heard their access ended
        told = [f"{d.latest.title} {d.latest.text}" for d in pim.chat.to(f"user:{email}")]
        assert any("expired" in text.lower() for text in told), told


@pytest.mark.parametrize("value", ["0", "1001", "2.5", "many"])
def test_max_concurrency_is_a_whole_number_from_1_to_1000(value: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(POLICY.replace("max_concurrency: 2", f"max_concurrency: {value}"))
    assert "providers.demo.max_concurrency" in str(raised.value)
