"""Three replicas on the real local PostgreSQL, started at the same instant; activations all
expiring within seconds of each other; one replica SIGKILLed halfway through the revocations.
Every grant is revoked, none early, each recorded by exactly one audit event, and the audit
chain verifies. The test runs a small N; ``tools/soak_replicas.py`` runs 2,000."""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_scenario import run_with_receiver

COUNT = 120
DURATION = "15s"


@pytest.mark.postgres
async def test_a_replica_killed_halfway_through_expiries_loses_no_revocation(
    tmp_path: Path, empty_pg: str
) -> None:
    # 120 calls of 50 ms, two at a time per replica: the kill lands while calls are going on.
    outcome = await run_with_receiver(tmp_path, empty_pg, COUNT, DURATION, latency=0.05,
                                      max_concurrency=2)
    assert outcome.revoked == outcome.revoke_events == COUNT
    assert 0 < outcome.killed_after_revokes < COUNT, "the kill came mid-way"
    print(f"\n{outcome}")
