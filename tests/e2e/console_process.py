"""``pimbot run`` on the console adapter as a real process, with a script piped to stdin.

Async (unlike ``server_process.run_pimbot``) so that a test's local webhook receiver keeps
answering on the same event loop while pimbot runs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from server_process import clean_env, pimbot_command

# Seconds to wait for an expected line: a hang fails, it never blocks CI. Not a speed limit:
# the first wait includes the start (imports, migrating a new SQLite file, the policy) of the
# eight console scenarios started at once, which on a 2-core machine running three other
# suites (load 10-12) took more than 30 s (tests/e2e/test_console_scenarios.py, 4 failures).
READ_TIMEOUT = 120.0
EXIT_TIMEOUT = 60.0  # seconds for pimbot to exit once its input has ended
_REQUEST_ID = re.compile(r"^  Request ([a-z0-9]+)$")


@dataclass(frozen=True)
class ConsoleRun:
    code: int
    out: list[str]
    err: str
    started: float  # time.monotonic() just before the process was spawned
    ended: float  # time.monotonic() once it had exited

    @property
    def text(self) -> str:
        return "\n".join(self.out)

    def answer(self, fragment: str) -> str:
        """The one line of stdout containing ``fragment`` (fails unless exactly one)."""
        lines = [line for line in self.out if fragment in line]
        assert len(lines) == 1, (fragment, self.text)
        return lines[0]

    def request_ids(self) -> list[str]:
        """Every request id shown on a card (``  Request xxxxxx``), first appearance first."""
        ids = [m.group(1) for line in self.out if (m := _REQUEST_ID.match(line))]
        return list(dict.fromkeys(ids))

    def cards(self, audience: str) -> list[list[str]]:
        """The cards printed to one person (``── to EMAIL ──``): title line, then its lines."""
        cards: list[list[str]] = []
        current: list[str] | None = None
        for line in self.out:
            if line.startswith("── "):
                current = [] if line.startswith(f"── to {audience} ─") else None
                if current is not None:
                    cards.append(current)
            elif current is not None and (not current or _card_body(line)):
                current.append(line)
            else:
                current = None
        return cards

    def updates(self, audience: str) -> list[str]:
        """The one-line redraws of cards shown to one person (``↻ updated for EMAIL: …``)."""
        prefix = f"  ↻ updated for {audience}: "
        return [line.removeprefix(prefix) for line in self.out if line.startswith(prefix)]

    def card_titles(self, audience: str) -> list[str]:
        return [card[0] for card in self.cards(audience) if card]


def _card_body(line: str) -> bool:
    return line.startswith("  ") and not line.startswith("  ↻")


def console_env(tmp_path: Path, policy: Path | None, **extra: str) -> dict[str, str]:
    """A clean environment for the console; ``policy=None`` means the bundled example."""
    env: dict[str, str] = clean_env(tmp_path, PIMBOT_ADAPTERS="console", **extra)
    if policy is None:
        del env["PIMBOT_POLICY"]
    else:
        env["PIMBOT_POLICY"] = str(policy)
    return env


class ConsoleProcess:
    """A running ``pimbot run``, typed into line by line like a person at a terminal would:
    read a request id off a card, then type a command that names it."""

    def __init__(self, process: asyncio.subprocess.Process, started: float) -> None:
        self._process = process
        self._started = started
        self._out: list[str] = []
        self._read = 0  # lines of _out already looked at by read_until
        self._err = asyncio.create_task(self._stream(process.stderr))

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str]) -> ConsoleProcess:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *pimbot_command(),
            "run",
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process, started)

    async def type(self, *lines: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write("".join(f"{line}\n" for line in lines).encode())
        await self._process.stdin.drain()

    async def read_until(self, fragment: str) -> str:
        """The next stdout line containing ``fragment`` (lines before it are kept)."""
        for seen in self._out[self._read :]:
            self._read += 1
            if fragment in seen:
                return seen
        async with asyncio.timeout(READ_TIMEOUT):
            while True:
                line = await self._next_line()
                self._read += 1
                if line is None:
                    raise AssertionError(f"no {fragment!r} before exit:\n" + "\n".join(self._out))
                if fragment in line:
                    return line

    async def finish(self) -> ConsoleRun:
        """End the input (like Ctrl-D or the end of a pipe) and wait for pimbot to exit."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            async with asyncio.timeout(EXIT_TIMEOUT):
                while await self._next_line() is not None:
                    pass
                code = await self._process.wait()
                err = await self._err
        except TimeoutError:
            self.kill()
            raise
        return ConsoleRun(code, list(self._out), err, self._started, time.monotonic())

    def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()

    async def close(self) -> None:
        """Kill pimbot if it is still running (a failed test) and reap it."""
        self.kill()
        await self._process.wait()
        await self._err

    async def _next_line(self) -> str | None:
        assert self._process.stdout is not None
        raw = await self._process.stdout.readline()
        if not raw:
            return None
        line = raw.decode().rstrip("\r\n")
        self._out.append(line)
        return line

    @staticmethod
    async def _stream(stream: asyncio.StreamReader | None) -> str:
        assert stream is not None
        return (await stream.read()).decode()


@asynccontextmanager
async def open_console(cwd: Path, env: dict[str, str]) -> AsyncIterator[ConsoleProcess]:
    process = await ConsoleProcess.start(cwd, env)
    try:
        yield process
    finally:
        await process.close()


async def run_console(cwd: Path, script: str, env: dict[str, str]) -> ConsoleRun:
    """Pipe ``script`` into ``pimbot run`` and wait for it to exit on its own."""
    async with open_console(cwd, env) as process:
        await process.type(*script.splitlines())
        return await process.finish()
