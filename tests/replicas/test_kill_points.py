"""kill -9 at 50 random points of a small ``pimbot run`` (SQLite, a webhook provider, a
handful of activations granting, expiring, revoking and ending early): after every restart,
nothing is active past its end, nobody holds the role at the provider without a live
activation, and the audit chain verifies; at the end everything is revoked, each grant by
exactly one audit event. ``tools/soak_kill_points.py`` runs more, with other seeds."""

from __future__ import annotations

import os
from pathlib import Path

from kill_points import run

RUNS = 50
SEED = int(os.environ.get("PIMBOT_KILL_SEED", "13"))


async def test_kill_9_at_random_points_loses_nothing(tmp_path: Path) -> None:
    report = await run(tmp_path, RUNS, SEED)
    assert report.problems == [], report.problems
    assert report.runs == RUNS
    print(f"\nseed {SEED}: {report.runs} kills, {report.kills_mid_call} in the middle of a call")
