"""A randomized life: many people, overlapping activations, extensions, deactivations, policy
edits and restarts against a recording provider. At the end every granted ref was revoked
exactly once, none while a request still stood on it, and the audit chain verifies."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import GrantTarget
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import GrantRow, RequestRow
from pimbot.testing.fakes import FakeClock, RecordingChatGateway, RecordingProvider
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from pimbot.workflow.usecases.assignment import reconcile

PEOPLE = [f"p{i}@example.com" for i in range(6)]
ROLES = ["alpha", "beta", "gamma"]
STEPS = 90


def policy_text(variant: dict[str, str], with_gamma: bool) -> str:
    roles = "".join(
        f"  {name}:\n    provider: demo\n    max_duration: 3h\n"
        f"    grant: {{group: {variant.get(name, name)}}}\n"
        for name in ROLES if with_gamma or name != "gamma")
    assignments = "".join(
        f"  - {{user: {person}, role: {name}, type: eligible}}\n"
        for person in PEOPLE for name in ROLES if with_gamma or name != "gamma")
    assignments += ("  - {user: p0@example.com, role: alpha, type: active,"
                    " until: \"2026-11-02T13:00:00Z\"}\n")
    return ("admins: [admin@example.com]\nproviders:\n  demo: {type: noop}\nroles:\n"
            + roles + "assignments:\n" + assignments)


class StrictProvider(RecordingProvider):
    """Also notes every revoke that came while a request still stood on the grant."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.early: list[str] = []

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        async with self.db.read() as session:
            grant = (await session.scalars(select(GrantRow).where(
                GrantRow.activation_id == target.activation_id,
                GrantRow.state == "revoking"))).first()
            standing = [] if grant is None else (await session.scalars(select(RequestRow).where(
                RequestRow.grant_id == grant.id, RequestRow.state == "active"))).all()
        if grant is None or standing:
            self.early.append(f"{target.activation_id}: {[r.id for r in standing]}")
        await super().revoke(target, ref)


@dataclass
class World:
    db: Database
    clock: FakeClock
    provider: StrictProvider
    chat: RecordingChatGateway = field(default_factory=RecordingChatGateway)
    variant: dict[str, str] = field(default_factory=dict)
    with_gamma: bool = True
    core: PimCore | None = None
    replies: list[bool] = field(default_factory=list)

    async def boot(self) -> PimCore:
        """A (re)start: apply the policy, reconcile, run what is due."""
        policy = parse_policy(policy_text(self.variant, self.with_gamma))
        await apply_policy(self.db, policy, self.clock)
        self.core = PimCore(self.db, policy, {"demo": self.provider}, self.clock)
        self.core.add_gateway(self.chat)
        await reconcile(self.core.ctx)
        await self.core.drain()
        return self.core

    async def say(self, email: str, text: str) -> None:
        assert self.core is not None
        reply = await self.core.handle_text(Actor(email), text)
        assert "went wrong" not in reply.text, reply.text
        self.replies.append(reply.ok)
        await self.core.drain()


@pytest.mark.parametrize("seed", [7, 2026])
async def test_every_grant_is_revoked_once_and_never_early(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    world = World(db, FakeClock(), StrictProvider(db))
    await world.boot()
    for _ in range(STEPS):
        op = rng.choices(["activate", "deactivate", "extend", "wait", "edit", "restart"],
                         weights=[30, 8, 8, 25, 4, 4])[0]
        person = rng.choice(PEOPLE)
        role = rng.choice(ROLES if world.with_gamma else ROLES[:2])
        if op == "activate":
            await world.say(person, f"activate {role} for {rng.randint(1, 90)}m reason r")
        elif op == "deactivate":
            await world.say(person, f"deactivate {role}")
        elif op == "extend":
            await world.say(person, f"extend {role} for {rng.randint(5, 30)}m")
        elif op == "wait":
            world.clock.advance(timedelta(minutes=rng.randint(1, 40)))
            assert world.core is not None
            await world.core.drain()
        elif op == "edit":
            if rng.random() < 0.5:
                world.with_gamma = not world.with_gamma
            else:
                changed = rng.choice(ROLES)
                world.variant[changed] = f"{changed}-{rng.randint(0, 9)}"
            await world.boot()
        else:
            await world.boot()
    world.clock.advance(timedelta(days=2))  # everything ends
    assert world.core is not None
    await world.core.drain()
    provider = world.provider
    assert len(provider.granted) > 10, "the run granted too little to prove anything"
    assert sum(1 for c in provider.calls if c.action == "revoke") > 10
    assert provider.early == []
    assert provider.unmatched() == {}
    assert provider.credentials == {} and provider.held == set()
    async with db.read() as session:
        open_grants = (await session.scalars(select(GrantRow).where(
            GrantRow.state != "revoked"))).all()
    assert open_grants == []
    report = await verify_chain(db)
    assert report.ok, report.problem
