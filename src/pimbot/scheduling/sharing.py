"""How much of a burst one replica claims when several work the same queue.

A batch claim (expiries, grants) takes up to ``batch_size`` jobs in one statement. With one
replica that is right; with two, the first to look would take a whole burst of 250 while the
other idled. So, with more than one live replica (``scheduling/replicas.py``: the rows that
beat), a batch claim takes about its share of what is due:

    share = ceil(due / live)   due:  the queued jobs of the batch kinds due now, leased or not
                               live: the replicas alive at the last heartbeat, this one included
    claim = share - held       held: the jobs of those kinds this worker is running now

never more than the batch size, nothing once ``held`` reaches ``share`` (the worker looks
again when one of its batches ends), and never fewer than ``floor`` when it claims at all: a
small burst is not worth splitting, and a replica whose peer is late (or died and is not yet
reaped) drains the rest in a few rounds of at least ``floor`` jobs, not in halvings of one.
Counting leased jobs in ``due`` keeps each share the same whoever claims first. A replica
that dies mid-burst loses nothing: its jobs' leases are released when it is reaped, or run
out, exactly as without sharing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FLOOR = 32  # a batch claim never splits below this many jobs


@dataclass(frozen=True)
class Share:
    """What a batch claim needs to know to take its share: ``live`` replicas (this one
    included), the ``held`` jobs of the batch kinds this worker runs now, the ``floor``."""

    live: int
    held: int = 0
    floor: int = DEFAULT_FLOOR

    @property
    def shared(self) -> bool:
        """Whether there is anyone to share with (a lone replica claims as before)."""
        return self.live > 1

    def claim_size(self, due: int, limit: int) -> int:
        """How many of ``due`` jobs to claim now, at most ``limit`` (0: this worker runs its
        share already, or nothing is due)."""
        if not self.shared:
            return limit
        share = -(-due // self.live)
        if due <= 0 or self.held >= share:
            return 0
        return min(limit, due, max(share - self.held, self.floor))
