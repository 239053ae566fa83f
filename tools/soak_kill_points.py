"""Soak: kill -9 at random points of a small ``pimbot run``, many more times than the test
(``tests/replicas/test_kill_points.py``), with a seed of your choice.

    .venv/bin/python tools/soak_kill_points.py [--runs 500] [--seed N]

Prints the problems found (none expected) and exits 1 if there were any.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests", "tests/e2e", "tests/replicas"):
    sys.path.insert(0, str(ROOT / folder))


async def main(runs: int, seed: int) -> int:
    from kill_points import run

    with tempfile.TemporaryDirectory() as tmp:
        report = await run(Path(tmp), runs, seed)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(f"seed {seed}: {report.runs} kills, {report.kills_mid_call} with a call in flight, "
          f"{len(report.problems)} problem(s)")
    return 1 if report.problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.seed)))
