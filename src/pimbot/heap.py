"""The cyclic garbage collector in a long-running pimbot process.

A started pimbot holds ~140,000 objects that live as long as the process: the policy (one
object per assignment and role), SQLAlchemy's metadata, mappers and statement caches, the
adapters' clients. With CPython's defaults the collector scans them again and again: a full
collection whenever enough objects survived since the last one, which a burst of expiries
(ORM rows, tasks, HTTP requests, each surviving a few hundred milliseconds) triggers within
a second. Measured on a burst of 1,000 expiries (docs/PERFORMANCE.md, "Bursts"): 0.6-1.1 s of
its 2.9-3.1 s of CPU was the collector, two full collections of 0.25-0.42 s each (every
provider call in flight stalled meanwhile) and ~270 young collections.

``settle()`` is called by the composition root once start-up is done: it collects what the
start left, freezes the survivors (``gc.freeze``: the collector never scans them again; a
cycle among them is never reclaimed, which for objects that live as long as the process
costs nothing), and raises the young generation's threshold from 700 allocations to
``YOUNG_THRESHOLD``, so short-lived work is collected in a few larger passes instead of
hundreds. Reference counting, which frees almost everything, is untouched.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations (net) between young collections; CPython's is 700
OLDER_THRESHOLDS = (10, 10)  # CPython's own: collections of each generation before the next


def settle() -> int:
    """Collect, freeze what survived start-up, and collect young garbage less often;
    returns how many objects were frozen. Safe to call again (e.g. after a policy reload)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    return gc.get_freeze_count()
