"""Statements, transactions and CPU of the two chat turns of an activation, without the
worker: the requester's ``activate`` and the approver's Approve click (``bench_activations``'
policy), one at a time. ``--verbose`` prints the statements of one pair.

    .venv/bin/python bench/turn_statements.py --pairs 150 [--database pg]

Compare with the code before a change by running it with ``PYTHONPATH=OLD/src:OLD/bench``,
alternating, in the same minutes (docs/PERFORMANCE.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import event

from bench_activations import (
    APPROVER,
    DEFAULT_POSTGRES,
    ROLE,
    CountingProvider,
    person,
    policy_text,
)
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.store.database import Database
from pimbot.testing.fakes import RecordingChatGateway
from pimbot.testing.scratch import scratch_postgres
from pimbot.ui.cards import ActionId
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

WARM = 3


async def main(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        if args.database == "pg":
            admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
            url = await scratch_postgres(admin, stack)
        else:
            url = f"sqlite+aiosqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/t.db"
        db, clock = Database(url), SystemClock()
        stack.push_async_callback(db.dispose)
        await db.upgrade()
        policy = parse_policy(policy_text(WARM + args.pairs))
        await apply_policy(db, policy, clock)
        core = PimCore(db, policy, {"demo": CountingProvider()}, clock, owner="turns")
        core.add_gateway(RecordingChatGateway())
        texts: list[str] = []
        begun = [0]

        def statement(_c: Any, _cu: Any, text: str, *_: Any) -> None:
            if not text.startswith("BEGIN"):
                texts.append(" ".join(text.split())[:150])

        event.listen(db.engine.sync_engine, "before_cursor_execute", statement)
        event.listen(db.engine.sync_engine, "begin", lambda _c: begun.__setitem__(0, begun[0] + 1))

        async def pair(n: int, show: bool) -> None:
            texts.clear()
            begun[0] = 0
            asked = await core.handle_text(Actor(person(n), "console"),
                                           f"activate {ROLE} for 1h reason bench")
            first = (len(texts), begun[0], list(texts))
            texts.clear()
            begun[0] = 0
            approved = await core.handle_action(Actor(APPROVER, "console"), ActionId.APPROVE,
                                                asked.subject)
            if not (asked.ok and approved.ok):
                raise SystemExit(f"refused: {asked.text} / {approved.text}")
            if show:
                print("activate:", *first[2], "approve:", *texts, sep="\n  ")
                print(f"activate {first[0]} statements / {first[1]} transactions; "
                      f"approve {len(texts)} / {begun[0]}")

        for n in range(WARM):
            await pair(n, show=n == WARM - 1 and args.verbose)
        started = time.process_time()
        for n in range(WARM, WARM + args.pairs):
            await pair(n, show=False)
        cpu = (time.process_time() - started) / args.pairs * 1000
        print(f"{args.database}: {cpu:.2f} CPU ms per activate + Approve ({args.pairs} pairs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--database", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--verbose", action="store_true")
    asyncio.run(main(parser.parse_args()))
