"""Soak: three replicas on the local PostgreSQL, 2,000 activations expiring within the same
minute, one replica SIGKILLed halfway through the revocations (the scenario of
``tests/replicas/test_replicas_crash.py`` at full size; see docs/OPERATIONS.md).

    .venv/bin/python tools/soak_replicas.py [--count 2000] [--duration 90s]

Needs PostgreSQL (``PIMBOT_TEST_POSTGRES_URL``, else postgres@127.0.0.1:5432/test); creates
and drops a database of its own. Prints the outcome; exits 1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests", "tests/e2e", "tests/replicas"):
    sys.path.insert(0, str(ROOT / folder))

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def main(count: int, duration: str) -> int:
    import asyncpg
    from crash_scenario import run_with_receiver

    admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_URL
    plain = admin.replace("postgresql+asyncpg://", "postgresql://")
    name = "pimbot_soak_" + secrets.token_hex(4)
    conn = await asyncpg.connect(plain)
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = await run_with_receiver(Path(tmp), f"{admin.rsplit('/', 1)[0]}/{name}",
                                              count, duration)
    except AssertionError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    print(outcome)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--duration", default="90s", help="each activation's duration")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.count, args.duration)))
