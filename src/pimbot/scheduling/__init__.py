"""Durable jobs: enqueue inside a transaction, claim under a lease, retry, and the worker loop.

Wiring (the composition root)::

    queue = JobQueue(db, clock, owner=f"{hostname}:{pid}")
    worker = Worker(queue, handler)
    worker.attach(db)            # a commit that enqueued a job wakes the loop
    task = asyncio.create_task(worker.run())
    ...
    await worker.stop()

Handlers raise ``PermanentJobError`` when retrying cannot help; any other exception retries
with capped exponential backoff (``RetryPolicy``) until ``max_attempts``.
"""

from pimbot.scheduling.queue import ClaimedJob, JobQueue, JobStatus, enqueue
from pimbot.scheduling.retry import PermanentJobError, RetryPolicy
from pimbot.scheduling.worker import JobHandler, Worker

__all__ = [
    "ClaimedJob",
    "JobHandler",
    "JobQueue",
    "JobStatus",
    "PermanentJobError",
    "RetryPolicy",
    "Worker",
    "enqueue",
]
