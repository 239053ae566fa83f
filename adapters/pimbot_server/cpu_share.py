"""How the machine's CPU time was shared while a benchmark ran: pimbot's and everything else's
busy time, and the time the hypervisor took for other guests (``steal``).

A virtual machine whose host is busy runs every figure slower without a higher load average:
the time is *stolen*. ``pimbot bench`` records the share per benchmark beside its report, so
a slow figure can be told from a slow machine. Linux only (``/proc/stat``); elsewhere nothing
is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_STAT = Path("/proc/stat")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """The machine's CPU clock ticks since boot, all CPUs together."""

    busy: int
    idle: int
    stolen: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.stolen


def read_cpu_times(stat: Path = _STAT) -> CpuTimes | None:
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu" or len(first) < 9:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return CpuTimes(busy=user + nice + system + irq + softirq, idle=idle + iowait, stolen=steal)


def shares(before: CpuTimes | None, after: CpuTimes | None) -> dict[str, float]:
    """Per cent of the machine's CPU time between two readings: busy, idle, stolen."""
    if before is None or after is None or after.total <= before.total:
        return {}
    span = after.total - before.total
    return {
        "busy_pct": round(100 * (after.busy - before.busy) / span, 1),
        "idle_pct": round(100 * (after.idle - before.idle) / span, 1),
        "stolen_pct": round(100 * (after.stolen - before.stolen) / span, 1),
    }
