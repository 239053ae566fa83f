"""How long to wait before retrying a failed job: capped exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta


class PermanentJobError(Exception):
    """Raised by a job handler when retrying cannot help: the job fails at once."""


class RetryLater(Exception):
    """Raised by a job handler that must wait for something else (a lock held elsewhere):
    the job runs again after ``after`` without counting a failed attempt."""

    def __init__(self, reason: str, after: timedelta = timedelta(seconds=2)) -> None:
        super().__init__(reason)
        self.after = after


@dataclass(frozen=True)
class RetryPolicy:
    """Delay after the Nth failure: ``base * 2**(N-1)``, capped, plus up to ``jitter`` of it.

    With the defaults: 1s, 2s, 4s, 8s … up to 5 minutes, each up to 10% longer so that many
    jobs failing together do not retry in lockstep.
    """

    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)
    jitter: float = 0.1
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, failures: int) -> timedelta:
        """The wait after ``failures`` failed attempts (1 for the first failure)."""
        exponent = min(max(failures - 1, 0), 32)
        plain = min(self.base * (1 << exponent), self.cap)
        return plain * (1 + self.jitter * self.random())
