"""A standard output that closed under pimbot (``pimbot run | head -2``, ``... | less`` quit).

Unix tools end quietly when their reader goes away: the kernel's SIGPIPE kills them and the
shell reports 128 + 13 = 141. Python ignores SIGPIPE and raises ``BrokenPipeError`` instead;
pimbot does what the tools do, without being killed mid-transaction: it stops writing and
taking input, finishes the work in flight, stops cleanly and exits 141, so a script using
``set -o pipefail`` learns that the output (and, for the console, the rest of the input) was
cut short, exactly as it would from ``yes | head``. No traceback, no log line.
"""

from __future__ import annotations

import contextlib
import os
import sys

EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its closed pipe ended


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null: Python's flush of ``sys.stdout`` at exit (and
    any later write) then has nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
