"""Where ``pimbot run`` is in its start, for ``/readyz`` and for the chat routes' gate.

``pimbot run`` listens first (``pimbot_server.listener``, bound before SQLAlchemy, the policy
or the core are imported) and reads, composes and prepares afterwards, so ``/healthz`` answers
within the interpreter's own start whatever the policy's size. Until the policy is applied,
``/readyz`` answers 503 naming the phase, and a request on any other route waits for the
policy up to ``HOLD_SECONDS`` (within Slack's 3-second ack deadline: a short start is
invisible), then answers 503 with ``Retry-After`` (Slack and the Bot Connector retry; nobody
is answered from a half-applied policy). Once the policy is applied the chat routes are
served while the scheduler catches up on what fell due while the bot was down; ``/readyz``
turns 200 when the scheduler loop runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from enum import StrEnum

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
HOLD_SECONDS = 2.0


class Phase(StrEnum):
    """The steps of a start, in order; ``FAILED`` ends a start that raised."""

    LISTENING = "listening"  # importing pimbot (SQLAlchemy, the policy schema, the core)
    LOADING = "loading"  # reading and validating the policy file
    WAITING = "waiting"  # for the start-up lock (another replica starting may hold it)
    MIGRATING = "migrating"
    APPLYING = "applying"
    CATCHING_UP = "catching_up"  # policy applied; overdue jobs and reconciliation run
    RUNNING = "running"
    FAILED = "failed"


_NOT_APPLIED = frozenset({Phase.LISTENING, Phase.LOADING, Phase.WAITING, Phase.MIGRATING,
                          Phase.APPLYING, Phase.FAILED})

_REASONS = {
    Phase.LISTENING: "policy not applied yet (starting)",
    Phase.LOADING: "policy not applied yet (starting: reading the policy file)",
    Phase.WAITING: ("policy not applied yet (taking the start-up lock, which a replica "
                    "starting at the same time may hold)"),
    Phase.MIGRATING: "policy not applied yet (upgrading the database schema)",
    Phase.APPLYING: "policy not applied yet (applying the policy)",
    Phase.CATCHING_UP: "policy applied; scheduler catching up on due jobs",
    Phase.RUNNING: "running",
    Phase.FAILED: "start-up failed",
}


class StartupProgress:
    """The phase this process has reached, with when it entered it (monotonic seconds)."""

    def __init__(self, phase: Phase = Phase.LISTENING) -> None:
        self.phase = phase
        self.since = time.monotonic()
        self._settled = asyncio.Event()  # the policy is applied, or the start failed

    def enter(self, phase: Phase) -> None:
        if phase != self.phase:
            log.info("start-up: %s", _REASONS[phase])
        self.phase, self.since = phase, time.monotonic()
        if self.policy_applied or phase is Phase.FAILED:
            self._settled.set()

    async def applied_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the policy to be applied; whether it is."""
        if not self._settled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), seconds)
        return self.policy_applied

    @property
    def policy_applied(self) -> bool:
        """The chat routes may be served: the store matches the policy."""
        return self.phase not in _NOT_APPLIED

    @property
    def reason(self) -> str:
        """Why the process is not ready yet, in a few words (``/readyz``'s text)."""
        return _REASONS[self.phase]
