"""A real ``pimbot run`` with the Slack adapter, against the fake Slack Web API."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from fake_slack import FakeSlack
from slack_driver import SIGNING_SECRET

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from replica_process import Replica, replica_env, start_replicas  # noqa: E402
from server_process import POLICY  # noqa: E402


async def start_slack_pimbot(tmp_path: Path, fake: FakeSlack, policy_text: str = POLICY
                             ) -> Replica:
    """Start one ``pimbot run`` (SQLite in ``tmp_path``) whose Slack Web API is ``fake``
    and whose signing secret is the driver's; the caller stops it."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")
    env = replica_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}", policy)
    env.update(PIMBOT_ADAPTERS="slack", SLACK_BOT_TOKEN="xoxb-test",
               SLACK_SIGNING_SECRET=SIGNING_SECRET, PIMBOT_SLACK_API_URL=fake.api_url)
    [replica] = await start_replicas(tmp_path, env, 1)
    return replica


async def until(seen: Callable[[], object], replica: Replica) -> None:
    """Wait until ``seen()`` is true, while the process lives; at most 60 s (a hang fails the
    test, it never blocks CI)."""
    async with asyncio.timeout(60):
        while not seen():
            assert replica.process.returncode is None, replica.output()
            await asyncio.sleep(0.05)
