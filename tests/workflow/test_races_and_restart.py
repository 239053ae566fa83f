"""Concurrency and durability: one outcome from many clicks; expiry honoured after downtime."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from pimbot.policy import parse_policy
from pimbot.store.database import Database
from pimbot.store.tables import RequestRow, VoteRow
from pimbot.testing.fakes import RecordingChatGateway
from pimbot.ui.cards import ActionId
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

from .harness import POLICY, make_pim, request_id_of

BOB, ALICE, CAROL = "bob@example.com", "alice@example.com", "carol@example.com"


async def test_fifty_concurrent_clicks_give_one_decision_and_one_grant(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason race"))
    # Two approvers hammer Approve and Deny at once (double clicks, retries, both buttons).
    clicks = []
    for i in range(50):
        who = ALICE if i % 2 else CAROL
        action = ActionId.APPROVE if i % 3 else ActionId.SUBMIT_DENY
        inputs = {"reason": "no"} if action is ActionId.SUBMIT_DENY else None
        clicks.append(pim.core.handle_action(Actor(who), action, rid, inputs))
    replies = await asyncio.gather(*clicks)
    await pim.core.drain()

    decided = [r for r in replies if r.ok]
    assert len(decided) == 1, [r.text for r in replies if r.ok]
    assert all(not r.ok for r in replies if r is not decided[0])
    async with db.read() as session:
        row = await session.get(RequestRow, rid)
        votes = (await session.execute(select(func.count()).select_from(VoteRow))).scalar_one()
    assert row is not None and row.state in {"active", "denied"}
    assert votes == 1
    grants = pim.provider.actions("grant")
    assert len(grants) == (1 if row.state == "active" else 0)


async def test_expiry_missed_while_down_is_revoked_at_start(db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(BOB, "activate staging-deploy for 30m")
    assert len(pim.provider.actions("grant")) == 1
    # pimbot stops; three hours pass; a new process starts on the same database.
    pim.clock.advance(timedelta(hours=3))
    policy = parse_policy(POLICY)
    restarted = PimCore(db, policy, {"demo": pim.provider}, pim.clock)
    restarted.add_gateway(RecordingChatGateway())
    await restarted.start()
    try:
        # start() runs everything overdue before it returns: the revoke has happened.
        assert [c.email for c in pim.provider.actions("revoke")] == [BOB]
    finally:
        await restarted.stop()


async def test_two_replicas_revoke_each_grant_once(db: Database) -> None:
    pim = await make_pim(db)
    for _ in range(5):
        await pim.say(BOB, "activate staging-deploy for 10m")
        await pim.say(CAROL, "activate staging-deploy for 10m")
    pim.clock.advance(timedelta(minutes=11))
    policy = parse_policy(POLICY)
    other_db = Database(db.url)
    replicas = [PimCore(db, policy, {"demo": pim.provider}, pim.clock, owner="replica-a"),
                PimCore(other_db, policy, {"demo": pim.provider}, pim.clock, owner="replica-b")]
    for replica in replicas:
        replica.add_gateway(RecordingChatGateway())
    try:
        await asyncio.gather(*(r.drain() for r in replicas))
        await asyncio.gather(*(r.drain() for r in replicas))
    finally:
        await other_db.dispose()
    revokes = pim.provider.actions("revoke")
    assert len(revokes) == len({c.activation_id for c in revokes}), "no grant revoked twice"
    assert {c.email for c in revokes} == {BOB, CAROL}
    assert pim.provider.held == set()
