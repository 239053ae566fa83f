"""Where audit checkpoints go, and the writer that keeps them coming while pimbot runs.

``PIMBOT_AUDIT_CHECKPOINT`` is a file path (one JSON line appended per checkpoint, with
O_APPEND, so replicas on one host can share it) or an ``https://`` URL each checkpoint is
POSTed to as a JSON object; ``pimbot audit verify`` reads them back from the file, or with a
GET on the URL (JSON lines or a JSON array; a receiver that cannot answer GET is read with
``--checkpoint FILE`` instead). The default is a file beside the development key file
(``pimbot.db.audit-checkpoints.jsonl``), or ``./pimbot-audit-checkpoints.jsonl`` on
PostgreSQL. Keep it where whoever can write the database cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.ports import Clock
from pimbot.store.audit_checkpoint import (
    ChainHead,
    Checkpoint,
    chain_head,
    event_head,
    first_keyed_seq,
    parse_checkpoints,
    seal_checkpoint,
    take_checkpoint,
)
from pimbot.store.audit_log import APPENDED_FLAG
from pimbot.store.database import Database
from pimbot_server.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_SUFFIX = ".audit-checkpoints.jsonl"
SERVER_DEFAULT = "pimbot-audit-checkpoints.jsonl"
_TIMEOUT_S = 10.0


class CheckpointStoreError(Exception):
    """A checkpoint could not be written or read (one line, no secrets)."""


class CheckpointUnreachable(CheckpointStoreError):
    """The destination URL did not answer; the message is the HTTP client's own error class
    (``ClientConnectorError``, ``ServerTimeoutError``…), never the URL's query."""


def failure_reason(exc: BaseException) -> str:
    """What a warning says about a failed read or write: the store's own one-line message,
    else the error's class (an OSError's text may repeat a path; the class is enough)."""
    return str(exc) if isinstance(exc, CheckpointStoreError) else type(exc).__name__


class CheckpointStore(Protocol):
    @property
    def where(self) -> str: ...  # for messages: a path, or a URL without query or user

    async def append(self, checkpoint: Checkpoint) -> None: ...

    async def read_lines(self) -> list[str] | None: ...  # None: nothing written there yet


class FileCheckpoints:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    async def append(self, checkpoint: Checkpoint) -> None:
        await asyncio.to_thread(self._append_line, checkpoint.to_json() + "\n")

    def _append_line(self, line: str) -> None:
        # 0600: the lines are no secret and no longer make a floor, but whoever can read
        # them learns the chain's head; only pimbot needs them (an older file keeps its mode)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))  # one write: lines from replicas never mix
            os.fsync(fd)
        finally:
            os.close(fd)

    async def read_lines(self) -> list[str] | None:
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[str] | None:
        if not self.path.exists():
            return None
        return self.path.read_text(encoding="utf-8").splitlines(keepends=True)


class UrlCheckpoints:
    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def where(self) -> str:
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"

    async def append(self, checkpoint: Checkpoint) -> None:
        import aiohttp  # only a URL destination needs the HTTP client (slow to import)

        headers = {"Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                self.url, data=checkpoint.to_json(), headers=headers
            ) as response:
                if response.status // 100 != 2:
                    raise CheckpointStoreError(f"{self.where} answered HTTP {response.status}")
        except aiohttp.ClientError as exc:
            raise CheckpointUnreachable(type(exc).__name__) from exc

    async def read_lines(self) -> list[str] | None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                self.url, headers={"Accept": "application/json"}
            ) as response:
                if response.status == 404:
                    return None
                if response.status // 100 != 2:
                    raise CheckpointStoreError(
                        f"{self.where} answered GET with HTTP {response.status}; pass the "
                        "checkpoints it received with --checkpoint FILE")
                body = await response.text()
        except aiohttp.ClientError as exc:
            raise CheckpointUnreachable(type(exc).__name__) from exc
        if body.lstrip().startswith("["):
            return [json.dumps(item) + "\n" for item in json.loads(body)]
        return body.splitlines(keepends=True)


def checkpoint_store(settings: Settings, db: Database, source: str | None = None
                     ) -> CheckpointStore | None:
    """``source`` (a ``--checkpoint`` value), else the setting, else the default file;
    ``None`` for in-memory SQLite, which keeps nothing to check."""
    where = source or settings.audit_checkpoint
    if where and "://" in where:
        return UrlCheckpoints(where)
    if where:
        return FileCheckpoints(Path(where))
    if not db.is_sqlite:
        return FileCheckpoints(Path(SERVER_DEFAULT).resolve())
    path = db.sqlite_path
    if path is None:
        return None
    path = path.resolve()
    return FileCheckpoints(path.with_name(path.name + DEFAULT_SUFFIX))


async def write_checkpoint(db: Database, store: CheckpointStore, clock: Clock) -> Checkpoint:
    """One checkpoint of the head now (CLI commands that appended, or sealed an upgrade)."""
    checkpoint = await take_checkpoint(db, clock.now())
    await store.append(checkpoint)
    return checkpoint


class CheckpointWriter:
    """Writes a checkpoint at start, whenever the head moved, and at stop.

    A commit in this process that appended an event wakes it (after ``settle`` seconds, and
    at most one checkpoint every ``min_gap`` seconds, so a burst of events costs one line);
    every ``interval`` it looks at the head anyway, which catches other replicas' events. It
    never raises out of its loop: a destination that is down is logged and tried again at the
    next change. The cost is one indexed read of the head per checkpoint, none per event.
    """

    def __init__(self, db: Database, store: CheckpointStore, clock: Clock, *,
                 interval: float = 60.0, settle: float = 1.0, min_gap: float = 5.0) -> None:
        self.db, self.store, self.clock = db, store, clock
        self.interval, self.settle, self.min_gap = interval, settle, min_gap
        self._last_write = float("-inf")
        self.written: ChainHead | None = None
        self._keyed_from: int | None = None
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await self._warn_if_behind()
        self.db.on_commit(self._after_commit)
        await self.write_now()
        self._task = asyncio.create_task(self._loop(), name="audit-checkpoints")

    async def stop(self) -> None:
        """Let the loop finish what it is doing (never cancelled mid-write), then write the
        last checkpoint."""
        self._stopping.set()
        self._moved.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self.write_now()
        except Exception:
            log.exception("the audit checkpoint at shutdown was not written")

    def _after_commit(self, session: AsyncSession) -> None:
        if session.info.get(APPENDED_FLAG):
            self._moved.set()

    async def write_now(self) -> bool:
        """Write a checkpoint if the head moved since the last one; False if that failed."""
        head = await chain_head(self.db)
        if head == self.written:
            return True
        if self._keyed_from is None:
            self._keyed_from = await first_keyed_seq(self.db, head)
        key = self.db.audit_keyring.current
        checkpoint = seal_checkpoint(key, head, self._keyed_from, self.clock.now())
        try:
            await self.store.append(checkpoint)
        except (OSError, TimeoutError, CheckpointStoreError) as exc:
            log.warning("audit checkpoint of event %d not written to %s: %s",
                        head.seq, self.store.where, failure_reason(exc))
            return False
        self.written = head
        log.debug("audit checkpoint: event %d to %s", head.seq, self.store.where)
        return True

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), self.interval)
            self._moved.clear()
            delay = max(self.settle, self._last_write + self.min_gap - loop.time())
            with contextlib.suppress(TimeoutError):  # a stop cuts the pause short
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            self._last_write = loop.time()
            try:
                await self.write_now()
            except Exception:
                log.exception("audit checkpoint failed; trying again at the next change")

    async def _warn_if_behind(self) -> None:
        """An early alarm: the log no longer holds the newest checkpoint's event as it was."""
        try:
            lines = await self.store.read_lines()
        except (OSError, TimeoutError, CheckpointStoreError, ValueError):
            return  # a POST-only receiver, or not reachable now: verify will say more
        newest = parse_checkpoints(lines or [], self.db.audit_keyring).newest
        if newest is None:
            return
        event = await event_head(self.db, newest.head_seq)
        if newest.head_seq > 0 and (event is None or not newest.matches(event)):
            log.error("the audit log does not hold event %d as the checkpoint of %s names it "
                      "(events removed or rewritten?): run `pimbot audit verify`",
                      newest.head_seq, newest.at)
