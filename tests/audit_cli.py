"""``pimbot …`` for the audit-chain tests: in this process (``main`` in a thread, so an async
test with the ``db`` fixture can call it) or as a real process; against SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pimbot.secretbox import generate_key
from pimbot.store.audit_log import append_event
from pimbot_server.audit_commands import checkpoint_after_change
from pimbot_server.cli import main
from pimbot_server.settings import Settings
from pimbot_server.storage import open_database
from server_process import POLICY, clean_env, pimbot_command

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class Done:
    code: int
    out: str
    err: str


@dataclass
class Pimbot:
    """The ``pimbot`` command with a fixed environment: a database URL, keys, a checkpoint
    file. ``env`` holds only the pimbot settings; every other variable is inherited."""

    tmp_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def checkpoint_file(self) -> Path:
        return Path(self.env["PIMBOT_AUDIT_CHECKPOINT"])

    async def __call__(self, *args: str, stdin: str = "", **overrides: str) -> Done:
        return await asyncio.to_thread(self._in_process, list(args), stdin, overrides)

    def _in_process(self, args: list[str], stdin: str, overrides: Mapping[str, str]) -> Done:
        out, err = io.StringIO(), io.StringIO()
        with _environment({**self.env, **overrides}), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err), _stdin(stdin):
            code = main(args)
        return Done(code, out.getvalue(), err.getvalue())

    async def process(self, *args: str, stdin: str = "", **overrides: str) -> Done:
        """The installed console script, as a real process."""
        env = clean_env(self.tmp_path, **{**self.env, **overrides})
        proc = await asyncio.create_subprocess_exec(
            *pimbot_command(), *args, cwd=self.tmp_path, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=90)
        assert proc.returncode is not None
        return Done(proc.returncode, out.decode(), err.decode())

    async def write_events(self, count: int, start: int = 0,
                           detail: Mapping[str, str] | None = None) -> None:
        """Events appended the way pimbot appends them (under the configured key), then a
        checkpoint, as after ``pimbot policy apply``; ``detail`` is added to each one's."""
        with _environment(self.env):
            settings = Settings.from_env(dict(os.environ))
        db = await open_database(settings)
        try:
            for n in range(start, start + count):
                async with db.transaction() as session:
                    await append_event(db, session, at=T0 + timedelta(minutes=n),
                                       actor=f"user{n % 3}@example.com", action="test.event",
                                       subject=f"item-{n}", detail={"n": n, **(detail or {})})
            await checkpoint_after_change(db, settings)
        finally:
            await db.dispose()


def pimbot_for(tmp_path: Path, database_url: str, **extra: str) -> Pimbot:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {
        "PIMBOT_DATABASE_URL": database_url,
        "PIMBOT_POLICY": str(policy),
        "PIMBOT_SECRET_KEY": generate_key(),
        "PIMBOT_AUDIT_KEY": generate_key(),
        "PIMBOT_AUDIT_CHECKPOINT": str(tmp_path / "checkpoints.jsonl"),
        **extra,
    }
    return Pimbot(tmp_path, env)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Exactly these pimbot settings (others removed) for the duration."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("PIMBOT_")}
    for name in saved:
        del os.environ[name]
    os.environ.update({k: v for k, v in values.items() if v != ""})
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("PIMBOT_")]:
            del os.environ[name]
        os.environ.update(saved)


@contextlib.contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved
