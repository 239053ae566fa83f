"""Restarts of ``pimbot run`` without paying for the imports each time.

A cold ``pimbot run`` spends about 1.6 CPU-seconds importing SQLAlchemy, aiohttp, pydantic and
pimbot before it reads a setting; the kill-points test restarts one 51 times. The launcher is
one interpreter that imports those modules once and then, for each start, forks a child
that calls ``pimbot_server.cli.main(["run"])``, the ``pimbot`` command's own entry point,
with its own environment, working directory and log file. The child is an ordinary process
with its own pid: SIGKILL and SIGTERM reach it alone, its exit code comes back here, and
everything a start does after importing (settings, the schema check, the policy, the
catch-up) runs in it as in a cold start. pimbot does no work at import time (no settings,
clients or engines at module level), so a forked child starts from the same state as a fresh
interpreter; ``random`` is reseeded in every child by CPython itself.

Only for tests that restart many times: the other process tests start the installed
``pimbot`` command cold, so the entry script and its lazy imports stay covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

_PROGRAM = r"""
import json, os, signal, sys
import pimbot_server.app, pimbot_server.cli, pimbot_server.commands  # what every run loads
from pimbot_server.cli import main

def reap(signum, frame):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        os.write(1, f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())

signal.signal(signal.SIGCHLD, reap)
for line in sys.stdin:
    start = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(start["cwd"])
        os.environ.clear()
        os.environ.update(start["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(start["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        sys.exit(main(["run"]))
    os.write(1, f"started {pid}\n".encode())
"""


class ForkedProcess:
    """What the replica helpers use of ``asyncio.subprocess.Process``, for a launched child."""

    def __init__(self, pid: int, exited: asyncio.Future[int]) -> None:
        self.pid = pid
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # exited, its exit not read yet
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Launcher:
    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self._process = process
        self._log = log
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._started: asyncio.Queue[int | None] = asyncio.Queue()
        self._one_start = asyncio.Lock()
        self._reader = asyncio.create_task(self._read(), name="launcher-reader")

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> Launcher:
        """The launcher runs with ``env`` (the replicas' settings, so anything a library
        reads from the environment at import time is what a cold start would read)."""
        log = cwd / "launcher.log"
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _PROGRAM, cwd=cwd, env=env,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=handle)
        return cls(process, log)

    def _exit_of(self, pid: int) -> asyncio.Future[int]:
        if pid not in self._exits:
            self._exits[pid] = asyncio.get_running_loop().create_future()
        return self._exits[pid]

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            kind, pid, *code = line.decode().split()
            if kind == "started":
                await self._started.put(int(pid))
            else:
                self._exit_of(int(pid)).set_result(int(code[0]))
        await self._started.put(None)  # the launcher itself is gone

    async def spawn(self, env: dict[str, str], cwd: Path, log: Path) -> ForkedProcess:
        """Fork one ``pimbot run`` with ``env`` as its whole environment, ``cwd`` as its
        working directory and stdout and stderr to ``log``."""
        assert self._process.stdin is not None
        async with self._one_start:
            line = json.dumps({"env": env, "cwd": str(cwd), "log": str(log)}) + "\n"
            self._process.stdin.write(line.encode())
            await self._process.stdin.drain()
            pid = await self._started.get()
        if pid is None:
            raise AssertionError("the launcher exited:\n"
                                 + self._log.read_text(errors="replace")[-4000:])
        return ForkedProcess(pid, self._exit_of(pid))

    async def close(self) -> None:
        """Stop the launcher (its children are the caller's to stop or kill first)."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        await self._reader
