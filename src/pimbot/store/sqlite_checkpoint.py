"""SQLite's WAL copied back into the database file on a thread of its own, not on the loop.

In WAL mode each ``COMMIT`` appends pages to the ``-wal`` file, and by default the connection
that commits the transaction taking the WAL past 1,000 pages then runs a checkpoint: it syncs
the WAL, copies its pages into the database file and syncs that. With the inline writer
(``sqlite_inline``) that connection is on the event loop's thread, so every ~60th commit of a
busy minute stalled the loop for 5-12 ms (77 of 4,312 commits in ``bench_activations``, half of
all the time spent committing; docs/PERFORMANCE.md, "Ninth session"), and with it every chat
turn, Slack ack and revocation timer waiting behind it.

Here pimbot's connections raise that threshold to ``SAFETY_NET_PAGES`` (still reached if the
checkpoints below fall behind) and a ``WalCheckpointer`` per database file runs
``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection, in a thread of its own,
``AFTER_COMMIT_S`` after a commit (one checkpoint for all the commits in that span). A passive
checkpoint never waits for a lock and never blocks a writer or a reader; SQLite releases the
GIL while it copies and syncs. A checkpoint that fails is logged once and tried again after the
next commit; the safety net still bounds the WAL.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

# Pages in the WAL at which a committing connection checkpoints by itself (SQLite's default is
# 1,000): reached only when the background checkpoints fall behind (a reader holding an old
# snapshot, a checkpoint failing).
SAFETY_NET_PAGES = 10_000
AFTER_COMMIT_S = 0.2  # a checkpoint runs this long after the first commit it will cover


class WalCheckpointer:
    """Checkpoints one SQLite database file's WAL off the event loop (see the module)."""

    def __init__(self, path: Path, *, after_commit_s: float = AFTER_COMMIT_S) -> None:
        self._path = path
        self._after_commit_s = after_commit_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pimbot-wal")
        self._connection: sqlite3.Connection | None = None  # used on the executor's thread only
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Future[None] | None = None
        self._again = False  # a commit came while a checkpoint ran: run another after it
        self._failing = False
        self._closed = False
        self.checkpoints = 0  # completed, for tests and benchmarks

    def committed(self) -> None:
        """A transaction committed to this file: checkpoint soon (once for many commits)."""
        if self._closed or self._timer is not None:
            return
        if self._running is not None:
            self._again = True
            return
        self._timer = asyncio.get_running_loop().call_later(self._after_commit_s, self._start)

    def _start(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._executor, self._checkpoint)
        self._running = running
        running.add_done_callback(self._done)

    def _done(self, running: asyncio.Future[None]) -> None:
        self._running = None
        if running.cancelled():
            return
        error = running.exception()
        if error is None:
            self.checkpoints += 1
            self._failing = False
        elif not self._failing:
            self._failing = True
            log.warning("SQLite WAL checkpoint of %s failed (%s); retried after the next "
                        "commit", self._path.name, error)
        if self._again:
            self._again = False
            self.committed()

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, isolation_level=None,
                                               check_same_thread=False)
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        """Stop checkpointing; waits for one that runs. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None:
            await asyncio.wait([self._running])
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=False)
