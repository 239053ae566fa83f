"""``GET /metrics`` is cheap to read: a scrape never counts a whole table, and the database
is read at most once per cache period however often it is scraped. On SQLite and PostgreSQL,
through the real aiohttp app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from pimbot.store.audit_log import append_event
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock
from pimbot_server.http import build_http_app
from pimbot_server.metrics import CACHE_SECONDS, Metrics


@dataclass
class Served:
    db: Database
    clock: FakeClock

    def is_ready(self) -> bool:
        return True


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Scraper:
    client: TestClient[Any, Any]
    statements: list[str]
    ticks: Ticks

    async def scrape(self) -> str:
        response = await self.client.get("/metrics")
        assert response.status == 200
        return await response.text()


@pytest.fixture
async def scraper(db: Database) -> AsyncIterator[Scraper]:
    clock, ticks = FakeClock(), Ticks()
    for n in range(3):
        async with db.transaction() as session:
            await append_event(db, session, at=clock.now(), actor="policy", action="x",
                               subject=str(n), outcome="ok", detail={})
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    metrics = Metrics(db, clock, monotonic=ticks)
    client = TestClient(TestServer(build_http_app(Served(db, clock), metrics=metrics)))
    await client.start_server()
    try:
        yield Scraper(client, statements, ticks)
    finally:
        await client.close()
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)


async def test_a_scrape_reads_indexes_not_whole_tables(scraper: Scraper) -> None:
    text = await scraper.scrape()
    assert "pimbot_audit_events 3.0" in text
    assert 'pimbot_requests{state="active"} 0.0' in text
    assert "pimbot_jobs_due 0.0" in text and "pimbot_replicas 0.0" in text
    reads = [s for s in scraper.statements if s.startswith("select")]
    assert reads, "the figures come from the database"
    for statement in reads:
        assert " where " in statement or "max(audit_events.seq)" in statement, statement
        assert not ("count(" in statement and "from audit_events" in statement), statement


async def test_the_database_is_read_at_most_once_per_cache_period(scraper: Scraper) -> None:
    await scraper.scrape()
    first = len(scraper.statements)
    assert first > 0
    await asyncio.gather(*(scraper.scrape() for _ in range(20)))
    assert len(scraper.statements) == first, "scrapes within the period read nothing"
    scraper.ticks.now += CACHE_SECONDS + 0.1
    await scraper.scrape()
    assert len(scraper.statements) > first, "the figures are read again once it is over"
