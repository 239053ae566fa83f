"""The replay guard's ledger, on SQLite and PostgreSQL: a delivery taken and finished is a
replay for good; one taken and never finished is a replay while its recorder lives and
its claim is fresh, and is taken over (once) when the recorder is gone or the claim is
older than the lease. (The process-level proof, with a SIGKILLed replica and two
survivors receiving Slack's retry at once, is tests/replicas/test_lb_slack_retry_after_kill.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pimbot.store.database import Database
from pimbot.store.deliveries import LEASE, DeliveryLedger, Take

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _take(db: Database, owner: str, at: datetime, key: str = "event:Ev1",
                retryable: bool = True) -> Take:
    async with db.transaction() as session:
        return await DeliveryLedger(db).take(session, "slack", key, "event", at, owner,
                                             retryable=retryable)


async def test_a_finished_delivery_is_a_replay_for_good(db: Database) -> None:
    assert await _take(db, "a", NOW) is Take.FIRST
    await DeliveryLedger(db).finish("slack", "event:Ev1", NOW)
    assert await _take(db, "b", NOW + LEASE * 2) is Take.REPLAY
    async with db.transaction() as session:
        await DeliveryLedger.release(session, "a")
    assert await _take(db, "b", NOW + LEASE * 2) is Take.REPLAY


async def test_an_unfinished_delivery_is_taken_over_once_its_claim_lapses(db: Database) -> None:
    assert await _take(db, "a", NOW) is Take.FIRST
    assert await _take(db, "b", NOW + timedelta(seconds=5)) is Take.REPLAY, "a is at work"
    assert await _take(db, "b", NOW + LEASE + timedelta(seconds=1)) is Take.RESUMED
    assert await _take(db, "c", NOW + LEASE + timedelta(seconds=2)) is Take.REPLAY, "b has it"


async def test_a_gone_recorder_releases_its_unfinished_deliveries_at_once(db: Database) -> None:
    assert await _take(db, "a", NOW) is Take.FIRST
    async with db.transaction() as session:
        assert await DeliveryLedger.release(session, "a") == 1  # a was reaped
    later = NOW + timedelta(seconds=5)
    results = await asyncio.gather(*(_take(db, owner, later) for owner in ("b", "c")))
    assert sorted(results) == sorted([Take.RESUMED, Take.REPLAY]), results


async def test_what_the_platform_never_retries_is_finished_when_taken(db: Database) -> None:
    assert await _take(db, "a", NOW, "trigger:1", retryable=False) is Take.FIRST
    async with db.transaction() as session:
        assert await DeliveryLedger.release(session, "a") == 0
    assert await _take(db, "b", NOW + LEASE * 2, "trigger:1") is Take.REPLAY
