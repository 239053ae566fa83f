"""Access-review campaign start: 10,000 assignments reviewed, items created, prompts queued.

``review start`` runs the real campaign start (``review_campaigns.start_campaign``): one
transaction that reads the assignments and their usage, writes one item and its reviewers
per assignment, one audit event, and the prompts as outbox jobs (a paged list per reviewer
with many items, a card per item for the others), plus the reminder and close jobs. The
target is within 10 s for 10,000 assignments.

Baseline, same run, same ``Database``: one bare transaction inserting the same number of
rows into a scratch table (the least a database can do to record one row per assignment).
``time_ratio`` = campaign start time / baseline time. Sending the prompts is the notify
worker's job, paced by each gateway's rate-limit handling (Slack's 429 ``Retry-After`` is
honoured by slack_sdk's retry handler; see tests/slack).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from pimbot.domain.ids import new_id
from pimbot.domain.model import ReviewSchedule
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, JobRow, ReviewItemRow
from pimbot.testing.fakes import RecordingProvider
from pimbot.testing.scratch import postgres_unreachable, scratch_postgres
from pimbot.workflow.core import PimCore
from pimbot.workflow.usecases.review_campaigns import start_campaign

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FULL, QUICK = 10_000, 1_000
TARGET_S = 10.0
ROLES = [f"role-{i}" for i in range(10)]
BASELINE = Table("bench_reviews_baseline", MetaData(),
                 Column("id", Integer, primary_key=True), Column("email", String(320)))


def policy_text() -> str:
    roles = "".join(
        f"  {name}:\n    provider: demo\n    approval: {{required: true, "
        f"approvers: [group:leads]}}\n" for name in ROLES)
    return ("admins: [admin@example.com]\ngroups:\n  leads: [lead1@example.com, "
            "lead2@example.com, lead3@example.com]\nproviders:\n  demo: {type: noop}\n"
            "roles:\n" + roles)


async def _seed(db: Database, count: int) -> None:
    now = SystemClock().now()
    async with db.transaction() as session:
        session.add_all(AssignmentRow(
            id=new_id("a", 10), email=f"user{i}@example.com", role=ROLES[i % len(ROLES)],
            type="eligible", starts_at=None, ends_at=None, source="admin", created_by="bench",
            created_at=now - timedelta(days=60), removed_at=None) for i in range(count))


async def measure(url: str, count: int) -> dict[str, Any]:
    db = Database(url)
    await db.upgrade()
    try:
        clock = SystemClock()
        policy = parse_policy(policy_text())
        await apply_policy(db, policy, clock)
        await _seed(db, count)
        core = PimCore(db, policy, {"demo": RecordingProvider()}, clock)
        async with db.engine.begin() as conn:
            await conn.run_sync(BASELINE.create)
        started = time.perf_counter()
        async with db.transaction() as session:
            await session.execute(insert(BASELINE), [
                {"id": i, "email": f"user{i}@example.com"} for i in range(count)])
        baseline = time.perf_counter() - started
        review = ReviewSchedule(name="bench", roles=tuple(ROLES), every=timedelta(days=90),
                                duration=timedelta(days=14))
        started = time.perf_counter()
        campaign = await start_campaign(core.ctx, review, created_by="bench",
                                        period_key=f"bench:{secrets.token_hex(4)}")
        elapsed = time.perf_counter() - started
        assert campaign is not None
        async with db.read() as session:
            items = await session.scalar(select(func.count()).select_from(ReviewItemRow))
            jobs = await session.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.kind == "notify"))
        if items != count:
            raise AssertionError(f"{items} items for {count} assignments")
    finally:
        await db.dispose()
    return {"start_s": round(elapsed, 2), "baseline_s": round(baseline, 3),
            "time_ratio": round(elapsed / baseline, 1), "items": items, "prompts_queued": jobs,
            "within_target": elapsed <= TARGET_S}


async def main(args: Any) -> dict[str, Any]:
    count = QUICK if getattr(args, "quick", False) else FULL
    report: dict[str, Any] = {"assignments": count, "target_s": TARGET_S}
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite = await measure(f"sqlite+aiosqlite:///{folder / 'bench.db'}", count)
        report.update({f"sqlite_{k}": v for k, v in sqlite.items()})
        admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
        problem = await postgres_unreachable(admin)
        if problem is not None:
            report["postgres"] = problem
        else:
            url = await scratch_postgres(admin, stack)
            report.update({f"pg_{k}": v for k, v in (await measure(url, count)).items()})
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
