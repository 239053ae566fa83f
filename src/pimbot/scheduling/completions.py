"""Group commit of job completions: the jobs that end at about the same time are marked done
in one transaction instead of one transaction each.

A worker running many small jobs at once (notices, card redraws, grants) used to spend one
write transaction per finished job on bookkeeping alone. Here the first job to finish starts a
writer; every job that finishes before the writer begins (the same tick of the event loop) or
while it writes joins the next transaction. A job's completion still returns only once it is
committed, so "the job's task has ended" keeps meaning "the job is done in the database", and
each completion is still a compare-and-set on the lease its job was claimed with.
"""

from __future__ import annotations

import asyncio
import logging

from pimbot.scheduling.queue import ClaimedJob, JobQueue

log = logging.getLogger(__name__)


class Completions:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self._waiting: list[tuple[list[ClaimedJob], asyncio.Future[set[int]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def complete(self, jobs: list[ClaimedJob]) -> set[int]:
        """Mark ``jobs`` done (those whose lease this owner still holds) together with the
        other jobs finishing now; returns the ids that were done. Raises what the
        transaction raised."""
        if not jobs:
            return set()
        future: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
        self._waiting.append((jobs, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        # A caller cancelled while waiting does not cancel the others' transaction.
        return await asyncio.shield(future)

    async def _write(self) -> None:
        await asyncio.sleep(0)  # the jobs that end in this tick of the loop come along
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                done = await self.queue.complete_ids(
                    [job for jobs, _ in batch for job in jobs])
            except Exception as exc:  # each waiter reports it as its own
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for jobs, future in batch:
                if not future.done():
                    future.set_result({job.id for job in jobs if job.id in done})
