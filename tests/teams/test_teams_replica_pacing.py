"""Replicas share Teams' rate limits: together they never exceed what one bot may send.

Two replicas (two rows in the replicas table of one database, as two hosts) each pace their
sends with their own limiter; each takes its part of every window from the live count.
"""

from __future__ import annotations

import pytest

from pimbot.scheduling.replicas import Replicas
from pimbot.store.database import Database
from pimbot_teams.limits import SEND_WINDOWS, ConversationLimiter


class Paced(Exception):
    """The limiter would sleep: this replica has sent all it may in the window."""


async def _sent_before_pacing(limiter: ConversationLimiter, conversation: str) -> int:
    sent = 0
    try:
        while sent < 100:
            await limiter.wait(conversation)
            sent += 1
    except Paced:
        return sent
    return sent


@pytest.mark.postgres
async def test_two_replicas_together_send_no_more_than_one_bot_may(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("replicas share one PostgreSQL database")
    now = [0.0]

    async def refuse_to_sleep(seconds: float) -> None:
        raise Paced

    replicas = [Replicas(Database(db.url), f"replica-{name}", beat=3600) for name in "ab"]
    try:
        for replica in replicas:
            replica.pidspace = f"host-of-{replica.owner}"  # two hosts, both alive
            await replica.join()
        for replica in replicas:
            await replica.reap()  # each has looked at the table since both joined
        limiters = [ConversationLimiter(clock=lambda: now[0], sleep=refuse_to_sleep,
                                        live=replica.live) for replica in replicas]
        sent = [await _sent_before_pacing(limiter, "a:chat") for limiter in limiters]
    finally:
        for replica in replicas:
            await replica.leave()
            await replica.db.dispose()

    per_second = dict((span, limit) for span, limit in SEND_WINDOWS)[1.0]
    assert sum(sent) <= per_second, f"{sent}: more than {per_second} sends in one second"
    assert sent == [per_second // 2] * 2, "each replica sends its part"


async def test_a_lone_replica_keeps_the_whole_limit(db: Database) -> None:
    replica = Replicas(db, "replica-alone", beat=3600)
    await replica.join()
    try:
        async def refuse_to_sleep(seconds: float) -> None:
            raise Paced

        limiter = ConversationLimiter(clock=lambda: 0.0, sleep=refuse_to_sleep,
                                      live=replica.live)
        assert await _sent_before_pacing(limiter, "a:chat") == 7
    finally:
        await replica.leave()
