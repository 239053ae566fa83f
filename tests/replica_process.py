"""``pimbot run`` replicas (``PIMBOT_ADAPTERS=none``: HTTP health routes and the scheduler)
as real processes on one database, started together, stopped with SIGTERM or killed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from server_process import clean_env, free_port, pimbot_command
from warm_launcher import ForkedProcess, Launcher

READY_TIMEOUT = 60.0  # a replica that never gets ready fails the test, never hangs it


@dataclass
class Replica:
    name: str
    port: int
    process: asyncio.subprocess.Process | ForkedProcess
    log: Path
    killed: bool = False
    stopped_code: int | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(
                self.url + path) as response:
            return response.status, await response.text()

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.returncode is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n"
                                     + self.log.read_text(errors="replace")[-4000:])
            try:
                status, _ = await self.get("/readyz")
                if status == 200:
                    return
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready:\n" + self.output()[-4000:])
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        if self.process.returncode is None:
            self.process.kill()
            self.killed = True

    async def stop(self, within: float = 60.0) -> int:
        """SIGTERM, then wait for the graceful shutdown to end (killed if it never does)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(within):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.name} did not stop on SIGTERM:\n"
                                 + self.output()[-4000:]) from None
        self.stopped_code = code
        return code

    async def reap(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def replica_env(tmp_path: Path, database_url: str, policy: Path, **extra: str) -> dict[str, str]:
    env = clean_env(tmp_path, PIMBOT_DATABASE_URL=database_url, PIMBOT_POLICY=str(policy),
                    PIMBOT_ADAPTERS="none", PIMBOT_HOST="127.0.0.1",
                    PIMBOT_AUDIT_CHECKPOINT=str(tmp_path / "checkpoints.jsonl"), **extra)
    return env


async def start_replicas(tmp_path: Path, env: dict[str, str], count: int,
                         each: Sequence[Mapping[str, str]] = (),
                         launcher: Launcher | None = None) -> list[Replica]:
    """Start ``count`` replicas at the same instant (one gather of process spawns);
    ``each[i]``, when given, adds replica ``i``'s own settings to ``env``. With a
    ``launcher`` they are forked from its warm interpreter instead of started cold."""
    extra = list(each) or [{} for _ in range(count)]
    ports = [free_port() for _ in range(count)]
    logs = [tmp_path / f"replica-{i}.log" for i in range(count)]
    envs = [{**env, **own, "PIMBOT_PORT": str(port)} for port, own in zip(ports, extra,
                                                                          strict=True)]
    processes: list[asyncio.subprocess.Process | ForkedProcess]
    if launcher is not None:
        processes = [await launcher.spawn(own, tmp_path, log)
                     for own, log in zip(envs, logs, strict=True)]
    else:
        processes = list(await _spawn_cold(tmp_path, envs, logs))
    return [Replica(f"replica-{i}", port, process, log)
            for i, (port, process, log) in enumerate(zip(ports, processes, logs, strict=True))]


async def _spawn_cold(tmp_path: Path, envs: list[dict[str, str]], logs: list[Path]
                      ) -> list[asyncio.subprocess.Process]:
    handles = [log.open("wb") for log in logs]
    try:
        return list(await asyncio.gather(*(
            asyncio.create_subprocess_exec(
                *pimbot_command(), "run", cwd=tmp_path, env=own,
                stdin=asyncio.subprocess.DEVNULL, stdout=handle, stderr=handle)
            for own, handle in zip(envs, handles, strict=True))))
    finally:
        for handle in handles:
            handle.close()
