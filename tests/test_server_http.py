"""``pimbot run`` with PIMBOT_ADAPTERS=none: the HTTP server and the worker, as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server_process import clean_env, pimbot_command

LISTENING = "HTTP listening on "
START_TIMEOUT = 60.0


async def _read_port(process: asyncio.subprocess.Process) -> int:
    """The bound port, from the server's own log line (it listens on port 0: any free port)."""
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        raw = await process.stderr.readline()
        if not raw:
            pytest.fail("pimbot exited before listening:\n" + "".join(seen))
        line = raw.decode()
        seen.append(line)
        if LISTENING in line:
            return int(line.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def running(tmp_path: Path, logs: list[str] | None = None,
                  **settings: str) -> AsyncIterator[str]:
    """``pimbot run`` listening on a free port of 127.0.0.1 with its policy applied; stopped
    with SIGTERM (exit 0).
    What it wrote to standard error is added to ``logs`` once it has stopped."""
    env = clean_env(tmp_path, PIMBOT_HOST="127.0.0.1", PIMBOT_PORT="0", **settings)
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "run", cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        port = await asyncio.wait_for(_read_port(process), START_TIMEOUT)
        base = f"http://127.0.0.1:{port}"
        await asyncio.wait_for(_applied(base), START_TIMEOUT)
        yield base
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        rest = await asyncio.wait_for(process.stderr.read(), START_TIMEOUT)
        if logs is not None:
            logs.append(rest.decode())
        code = await asyncio.wait_for(process.wait(), START_TIMEOUT)
    assert code == 0, "pimbot did not shut down cleanly on SIGTERM"


async def _applied(base: str) -> None:
    """Until the policy is applied: the port answers from the first moment of the start, the
    chat routes and /metrics with 503 until then (tests/test_server_listens_first.py)."""
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{base}/readyz") as response:
                if "policy not applied" not in await response.text():
                    return
            await asyncio.sleep(0.05)


async def _ready(http: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    """Ask /readyz until the worker has started (it starts right after the listener)."""
    status, text = 0, ""
    for _ in range(200):
        async with http.get(f"{base}/readyz") as response:
            status, text = response.status, await response.text()
        if status == 200:
            break
        await asyncio.sleep(0.05)
    return status, text


async def test_health_readiness_and_metrics(tmp_path: Path) -> None:
    async with running(tmp_path, PIMBOT_ADAPTERS="none") as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server}/healthz") as response:
            assert response.status == 200
            assert (await response.text()).strip() == "ok"

        status, text = await _ready(http, server)
        assert status == 200, text

        # counted by the composed app (the first /healthz above may have been answered by
        # the listener alone, before the metrics existed)
        async with http.get(f"{server}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{server}/nowhere") as response:
            assert response.status == 404

        async with http.get(f"{server}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            metrics = await response.text()

    assert 'pimbot_requests{state="pending_approval"} 0.0' in metrics
    assert 'pimbot_jobs{status="failed"}' in metrics
    assert "pimbot_oldest_overdue_job_age_seconds" in metrics
    assert "pimbot_audit_events " in metrics  # the policy was applied, so some events exist
    assert 'pimbot_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert 'route="unmatched",status="404"' in metrics


async def test_metrics_needs_the_bearer_token_when_one_is_set(tmp_path: Path) -> None:
    token = "mt-" + "7f3a9c1e5b" * 3
    logs: list[str] = []
    async with running(tmp_path, logs, PIMBOT_ADAPTERS="none",
                       PIMBOT_METRICS_TOKEN=token) as server, aiohttp.ClientSession() as http:
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                       {"Authorization": f"Bearer {token}x"}):
            async with http.get(f"{server}/metrics", headers=header) as response:
                assert response.status == 401, header
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert "pimbot_" not in await response.text()
        async with http.get(f"{server}/metrics",
                            headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            assert "pimbot_audit_events " in await response.text()
        async with http.get(f"{server}/healthz") as response:
            assert response.status == 200, "only /metrics needs the token"
    assert logs and token not in logs[0]


async def test_slack_mounts_its_route_on_the_same_server(tmp_path: Path) -> None:
    slack = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "not-a-real-secret"}
    async with running(tmp_path, **slack) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server}/slack/events", data=b"token=x") as response:
            assert response.status == 401  # mounted, and an unsigned request is refused
        async with http.get(f"{server}/healthz") as response:
            assert response.status == 200
