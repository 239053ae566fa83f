"""What one statement and one transaction cost at each layer pimbot's store goes through.

Issue 14 asks for ≥ 300 activations a second on SQLite: 3.3 ms of CPU for a request, its
Approve and its grant together. This measures the floor under that budget on this machine,
one prebuilt single-row ``INSERT`` (built once, its compiled form cached) run N times through:

- ``session``: ``AsyncSession.execute`` (what the store's Core statements use today);
- ``connection``: ``AsyncConnection.execute`` (SQLAlchemy Core, no ORM session);
- ``prepared``: ``pimbot.store.prepared.run`` (compiled once, run at the session's driver
  connection: what the store's hot statements use);
- ``driver``: the driver's own connection under SQLAlchemy (aiosqlite inline, or asyncpg);
- ``sqlite3``: the stdlib module itself (SQLite only);

and a transaction (``Database.transaction()`` with one statement, less that statement; and
``transaction_rows``: an empty one, one alone, one of 16 queued at once). With
``--per-request S,T`` it prints the CPU that S statements in T transactions cost at each
layer, and the activations a second one core could do if nothing else took any CPU.

    .venv/bin/python bench/statement_floor.py [--database pg] [--statements 5000]
        [--per-request 19.4,3.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from pimbot.store.database import Database
from pimbot.store.prepared import Prepared, run
from pimbot.testing.scratch import scratch_postgres

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FLOOR = Table("bench_statement_floor", MetaData(),
              Column("id", Integer, primary_key=True), Column("v", String(32)))
INSERT = insert(FLOOR)
PREPARED = Prepared(INSERT, keys=("id", "v"))


async def _cpu_per_call(count: int, call: Callable[[int], Awaitable[Any]]) -> float:
    """Microseconds of this process's CPU per ``await call(n)``."""
    started = time.process_time()
    for n in range(count):
        await call(n)
    return (time.process_time() - started) / count * 1e6


async def measure(url: str, count: int) -> dict[str, float]:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(FLOOR.metadata.drop_all)
            await conn.run_sync(FLOOR.metadata.create_all)
        ids = iter(range(1, 10_000_000))
        figures: dict[str, float] = {}
        async with db.transaction() as session:
            await session.execute(INSERT, {"id": next(ids), "v": "warm"})
            figures["session_us"] = await _cpu_per_call(
                count, lambda _: session.execute(INSERT, {"id": next(ids), "v": "x"}))
            figures["prepared_us"] = await _cpu_per_call(
                count, lambda _: run(session, PREPARED, {"id": next(ids), "v": "x"}))
            conn = await session.connection()
            figures["connection_us"] = await _cpu_per_call(
                count, lambda _: conn.execute(INSERT, {"id": next(ids), "v": "x"}))
            driver: Any = (await conn.get_raw_connection()).driver_connection
            if db.is_sqlite:
                text = "INSERT INTO bench_statement_floor (id, v) VALUES (?, ?)"
                figures["driver_us"] = await _cpu_per_call(
                    count, lambda _: driver.execute(text, (next(ids), "x")))
                stdlib = driver._conn  # aiosqlite keeps the sqlite3 connection here

                async def bare(_: int) -> None:
                    stdlib.execute(text, (next(ids), "x"))

                figures["sqlite3_us"] = await _cpu_per_call(count, bare)
            else:
                text = "INSERT INTO bench_statement_floor (id, v) VALUES ($1, $2)"
                figures["driver_us"] = await _cpu_per_call(
                    count, lambda _: driver.execute(text, next(ids), "x"))

        async def one_transaction(_: int) -> None:
            async with db.transaction() as session:
                await session.execute(INSERT, {"id": next(ids), "v": "x"})

        whole = await _cpu_per_call(max(count // 5, 100), one_transaction)
        figures["transaction_us"] = max(whole - figures["session_us"], 0.0)
        figures.update(await transaction_rows(db, ids, max(count // 5, 100)))
        async with db.engine.begin() as conn:
            await conn.run_sync(FLOOR.metadata.drop_all)
        return {name: round(value, 1) for name, value in figures.items()}
    finally:
        await db.dispose()


async def transaction_rows(db: Database, ids: Any, count: int) -> dict[str, float]:
    """Write transactions, CPU per transaction: an empty one; one with one INSERT, alone and
    as one of ``QUEUED`` writers started at once (on SQLite those share COMMITs,
    ``sqlite_writer``), less that INSERT's cost inside an open transaction."""

    async def empty(_: int) -> None:
        async with db.transaction():
            pass

    async def one(_: int) -> None:
        async with db.transaction() as session:
            await session.execute(INSERT, {"id": next(ids), "v": "x"})

    async def queued(_: int) -> None:
        await asyncio.gather(*(one(n) for n in range(QUEUED)))

    async with db.transaction() as session:  # the statement alone, to subtract
        statement = await _cpu_per_call(
            count, lambda _: session.execute(INSERT, {"id": next(ids), "v": "x"}))
    alone = await _cpu_per_call(count, one)
    together = await _cpu_per_call(max(count // QUEUED, 10), queued) / QUEUED
    return {"empty_transaction_us": await _cpu_per_call(count, empty),
            "transaction_alone_us": max(alone - statement, 0.0),
            f"transaction_{QUEUED}_queued_us": max(together - statement, 0.0)}


QUEUED = 16  # writers started at once in transaction_rows


def ceilings(figures: dict[str, float], statements: float, transactions: float
             ) -> dict[str, Any]:
    """CPU ms per request at each layer and the requests a second one core allows."""
    out: dict[str, Any] = {}
    for layer in ("session", "connection", "prepared", "driver", "sqlite3"):
        per_statement = figures.get(f"{layer}_us")
        if per_statement is None:
            continue
        ms = (statements * per_statement + transactions * figures["transaction_us"]) / 1000
        out[f"{layer}_ms_per_request"] = round(ms, 2)
        out[f"{layer}_ceiling_per_s"] = round(1000 / ms, 0) if ms else None
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        if args.database == "pg":
            admin = os.environ.get("PIMBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
            url = await scratch_postgres(admin, stack)
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite+aiosqlite:///{folder}/floor.db"
        figures = await measure(url, args.statements)
    statements, transactions = (float(x) for x in args.per_request.split(","))
    report: dict[str, Any] = {"database": args.database, "statements": args.statements,
                              **figures, "per_request": {"statements": statements,
                                                         "transactions": transactions},
                              **ceilings(figures, statements, transactions)}
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--per-request", default="19.4,3.2",
                        help="statements,transactions of one activation (bench_activations)")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
