"""``pimbot run`` listens before it prepares: while another replica holds the start-up lock
(here the test holds it), ``/healthz`` answers, ``/readyz`` says the policy is not applied
yet, and the other routes answer 503 with ``Retry-After``; once the lock is free the process
applies the policy and turns ready."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
from pathlib import Path

import aiohttp

from server_process import clean_env, pimbot_command

LISTENING = "HTTP listening on "
TIMEOUT = 60.0


async def _port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    while True:
        line = (await process.stderr.readline()).decode()
        assert line, "pimbot exited before listening"
        if LISTENING in line:
            return int(line.rsplit(":", 1)[1])


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str | None]:
    async with http.get(url) as response:
        return response.status, await response.text(), response.headers.get("Retry-After")


async def test_health_answers_while_the_policy_waits_then_ready(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PIMBOT_HOST="127.0.0.1", PIMBOT_PORT="0", PIMBOT_ADAPTERS="none")
    lock = os.open(tmp_path / "pimbot.db.startup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # "another replica" is migrating and applying
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "run", cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{await asyncio.wait_for(_port(process), TIMEOUT)}"
        async with aiohttp.ClientSession() as http:
            assert (await _get(http, f"{base}/healthz"))[:2] == (200, "ok\n")
            status, text, _ = await _get(http, f"{base}/readyz")
            assert status == 503 and "policy not applied yet" in text, text
            status, text, retry = await _get(http, f"{base}/metrics")
            assert (status, retry) == (503, "5") and "policy not applied" in text, text
            os.close(lock)  # the other replica is done
            lock = -1
            for _ in range(int(TIMEOUT * 10)):
                status, text, _ = await _get(http, f"{base}/readyz")
                if status == 200:
                    break
                await asyncio.sleep(0.1)
            assert status == 200 and "policy applied" in text, text
            assert (await _get(http, f"{base}/metrics"))[0] == 200
    finally:
        if lock >= 0:
            os.close(lock)
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        await asyncio.wait_for(process.stderr.read(), TIMEOUT)
        code = await asyncio.wait_for(process.wait(), TIMEOUT)
    assert code == 0, "pimbot stopped cleanly on SIGTERM"


async def test_a_signal_during_start_up_stops_cleanly(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PIMBOT_HOST="127.0.0.1", PIMBOT_PORT="0", PIMBOT_ADAPTERS="none")
    lock = os.open(tmp_path / "pimbot.db.startup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "run", cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await asyncio.wait_for(_port(process), TIMEOUT)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), TIMEOUT)
    finally:
        os.close(lock)
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, "a start that never finished still stops on SIGTERM, exit 0"
