"""What an outside attacker tried on ``POST /api/messages``, kept as tests: the token is
checked before the body is read, ``bearer`` in any case is accepted, and refusals of
unauthenticated requests are logged once a minute with a count."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fake_connector import FakeBotFramework
from policies import POLICY
from teams_driver import BOB
from teams_rig import running

from pimbot.store.database import Database
from pimbot_server.bodies import BodyBudget, BodyReader, RefusalLog

MESSAGES = "/api/messages"
ANSWER_WAIT_S = 30.0  # a hang is the failure; not a timing check


async def test_a_bad_token_is_refused_before_its_body_is_sent(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.driver.client.port)
        writer.write(f"POST {MESSAGES} HTTP/1.1\r\nHost: x\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000000\r\n"
                     "Authorization: Bearer not-a-token\r\n\r\n".encode())
        await writer.drain()  # ... and not a byte of the body
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_WAIT_S)
        writer.transport.abort()
        assert head.startswith(b"HTTP/1.1 401"), head


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_the_bearer_scheme_is_case_insensitive(
        sqlite_db: Database, fake_teams: FakeBotFramework, scheme: str) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        activity = rig.driver.installed(BOB)
        token = fake_teams.mint(service_url=str(activity["serviceUrl"]))
        response = await rig.driver.post(activity, "",
                                         headers={"Authorization": f"{scheme} {token}"})
        assert response.status == 201, await response.text()
        forged = fake_teams.mint(key=fake_teams.other_key())
        response = await rig.driver.post(activity, "",
                                         headers={"Authorization": f"{scheme} {forged}"})
        assert response.status == 401, "every other check is kept"


async def test_a_flood_of_refusals_is_one_log_line_a_minute_with_a_count(
        sqlite_db: Database, fake_teams: FakeBotFramework,
        caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        rig.adapter.bodies.refusals = RefusalLog(logging.getLogger("pimbot_server.bodies"),
                                                 every_s=60.0, timer=lambda: now[0])
        rig.driver.signed = False
        with caplog.at_level(logging.WARNING):
            for _ in range(50):
                assert (await rig.driver.post(rig.driver.installed(BOB))).status == 401
            now[0] += 61.0
            assert (await rig.driver.post(rig.driver.installed(BOB))).status == 401
        lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(lines) == 2, lines
        assert "(and 49 more in the last 61 s)" in lines[1], lines
        assert all(r.exc_info is None for r in caplog.records)


async def test_in_dev_mode_bodies_take_the_unauthenticated_budget(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    """Without credentials nothing is authenticated, so a body held mid-way keeps the bytes
    it sent of the budget and the next one past it is refused with 503."""
    async with running(sqlite_db, fake_teams, POLICY, auth=False) as rig:
        rig.adapter.bodies = BodyReader(BodyBudget(limit_bytes=4000))
        port = rig.driver.client.port
        headers = "Content-Type: application/json\r\n"
        opened = [await _partial(port, 3000, headers, " " * 2500) for _ in range(2)]
        # whichever reached the route second does not fit: it alone is answered, at once
        answers = {asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
                   for reader, _ in opened}
        done, pending = await asyncio.wait(answers, timeout=ANSWER_WAIT_S,
                                           return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        assert done, "neither was answered"
        head = next(iter(done)).result()
        assert head.startswith(b"HTTP/1.1 503") and b"Retry-After" in head, head
        for _, writer in opened:
            writer.transport.abort()
        for _ in range(200):  # until the dropped read gives its share back
            response = await rig.driver.post(rig.driver.installed(BOB))
            if response.status != 503:
                break
            await asyncio.sleep(0.05)
        assert response.status == 201


async def _partial(port: int, declared: int, headers: str, more: str = ""
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {MESSAGES} HTTP/1.1\r\nHost: x\r\n{headers}"
                 f"Content-Length: {declared}\r\n\r\n{{{more}".encode())
    await writer.drain()
    return reader, writer
