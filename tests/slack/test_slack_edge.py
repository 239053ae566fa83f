"""What an outside attacker tried on ``POST /slack/events``, kept as tests.

Bodies are read before anyone is known (the signature covers the whole body), so they are
read within a size, a deadline and a process-wide budget (``pimbot_server.bodies``); a signed
body that is not a Slack payload is a 400; one command cannot make pimbot look up hundreds
of people.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from fake_slack import BOB, FIXTURES, FakeSlack
from raw_http import partial_post
from slack_driver import FORM, JSON, SIGNING_SECRET, SlackDriver
from slack_process import start_slack_pimbot
from slack_rig import Rig, running
from test_slack_gateway import gateway_for
from test_slack_http import POLICY

from pimbot.store.database import Database
from pimbot_server.bodies import MAX_BODY_BYTES, UNAUTHENTICATED_BUDGET_BYTES, BodyReader
from pimbot_slack.directory import KEPT_MISSES
from pimbot_slack.translate import MAX_MENTIONS
from pimbot_slack.verify import signed_headers

EVENTS = "/slack/events"


@pytest.fixture
async def lite(sqlite_db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(sqlite_db, fake_slack, POLICY) as value:
        yield value


async def test_a_body_that_stops_arriving_is_408_and_its_connection_closed(lite: Rig) -> None:
    lite.adapter.bodies = BodyReader(deadline_s=0.5)  # the default is 10 s
    held = await partial_post(lite.driver.client.port, EVENTS, 1000, b"a=1")
    status, headers = await held.status()
    assert status == 408
    assert headers.get("connection") == "close"
    assert await held.closed_by_server()


async def test_pimbot_run_charges_its_body_budget_by_bytes_received_and_logs_drops_once(
        tmp_path: Path) -> None:
    """The attack on the real process: many connections each declaring ~1 MB and sending a
    few bytes. They hold only what they sent, so Slack's requests are still served (charged
    by declared length, 17 of them had every request refused 503 for as long as they were
    held). Bodies that really arrive fill the budget: then a body that does not fit is 503
    with Retry-After, dropping them gives the budget back, and the drops are one WARNING
    line, no traceback."""
    fake = FakeSlack({BOB[0]: (BOB[1], BOB[2])})
    await fake.start()
    replica = await start_slack_pimbot(tmp_path, fake)
    declared = 1_048_000
    fitting = UNAUTHENTICATED_BUDGET_BYTES // declared
    assert declared <= MAX_BODY_BYTES and fitting >= 2
    opened = []
    try:
        await replica.wait_ready()
        async with aiohttp.ClientSession(base_url=replica.url) as http:
            driver = SlackDriver(http, fake)  # type: ignore[arg-type]
            big = _padded_event(declared)
            for _ in range(fitting + 5):
                opened.append(await partial_post(replica.port, EVENTS, declared, b"a=1"))
            sent = (fitting + 5) * 3
            assert await _held_soon(http, sent) == sent, "only the bytes that came are held"
            assert (await driver.post(big, JSON)).status == 200, "declared is not held"
            for partial in opened:
                partial.drop()
            opened = [await partial_post(replica.port, EVENTS, declared,
                                         b"a=" + b"1" * (declared - 3))
                      for _ in range(fitting)]
            held = fitting * (declared - 1)
            assert await _held_soon(http, held) == held, "bodies that arrived are charged"
            response = await driver.post(big, JSON)
            assert response.status == 503 and int(response.headers["retry-after"]) > 0
            assert response.headers.get("connection") == "close"
            for partial in opened:
                partial.drop()
            assert await _served_again(driver, big) == 200, "the dropped gave budget back"
    finally:
        for partial in opened:
            partial.drop()
        await replica.stop()
        await fake.close()
    log = replica.log.read_text(errors="replace")
    assert log.count("a client left before sending its whole body") == 1, log[-3000:]
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


async def _held_soon(http: aiohttp.ClientSession, at_least: int) -> int:
    """Polls ``/metrics`` until the unauthenticated bytes held reach ``at_least``."""
    held = 0
    for _ in range(200):
        text = await (await http.get("/metrics")).text()
        held = int(float(next(line.split()[-1] for line in text.splitlines()
                              if line.startswith("pimbot_http_unauthenticated_body_bytes "))))
        if held >= at_least:
            return held
        await asyncio.sleep(0.05)
    return held


def _padded_event(size: int) -> str:
    """A signed-able ``app_home_opened`` event of exactly ``size`` bytes (JSON whitespace)."""
    body = json.loads((FIXTURES / "app_home_opened.json").read_text())
    body["event"]["user"] = BOB[0]
    body["event_id"] = "Ev0EDGEBIG01"
    text = json.dumps(body)
    return text + " " * (size - len(text.encode()))


async def _served_again(driver: SlackDriver, body: str) -> int:
    """Polls until the dropped connections are noticed (each closes its read)."""
    for _ in range(200):
        response = await driver.post(body, JSON)
        if response.status != 503:
            return response.status
        await asyncio.sleep(0.05)
    return 503


@pytest.mark.parametrize(("body", "content_type"), [
    ("[1,2]", JSON),
    ('"a string"', JSON),
    ("payload=%5B1%2C2%5D", FORM),  # payload=[1,2]
    ('{"type": "block_actions", "user": "U1", "actions": "x"}', JSON),
    (b"\xff\xfe".decode("latin-1"), JSON),
    ("[" * 100_000, JSON),  # nested past Python's recursion limit, well under the size cap
    ("payload=" + "%5B" * 100_000, FORM),
])
async def test_a_signed_body_that_is_not_a_slack_payload_is_400(
        lite: Rig, body: str, content_type: str) -> None:
    response = await lite.driver.post(body, content_type)
    assert response.status == 400, await response.text()
    assert "malformed body" in json.loads(await response.text())["error"]


async def test_a_command_naming_too_many_people_looks_nobody_up(lite: Rig) -> None:
    mentions = " ".join(f"<@U{n:05d}>" for n in range(1, 1301))
    _, name = await lite.driver.slash(BOB[0], f"help {mentions}")
    await lite.settle()
    text = lite.reply_to(name)["text"]
    assert "1300 people" in text and f"at most {MAX_MENTIONS}" in text, text
    looked_up = {c.args.get("user") for c in lite.slack.calls_to("users.info")}
    assert looked_up <= {BOB[0]}, f"{len(looked_up)} people looked up"


async def test_a_handful_of_mentions_is_still_read(lite: Rig) -> None:
    mentions = " ".join(f"<@U{n:05d}>" for n in range(1, MAX_MENTIONS + 1))
    _, name = await lite.driver.slash(BOB[0], f"help {mentions}")
    await lite.settle()
    assert "at most" not in lite.reply_to(name)["text"]


async def test_a_body_declared_over_the_limit_is_413_before_it_is_sent(lite: Rig) -> None:
    declared = await partial_post(lite.driver.client.port, EVENTS, MAX_BODY_BYTES + 1, b"")
    status, headers = await declared.status()
    declared.drop()
    assert status == 413
    assert headers.get("connection") == "close"


async def test_people_slack_does_not_know_are_remembered_within_a_bound(
        fake_slack: FakeSlack) -> None:
    """A miss is asked once per MISS_TTL, in a table of at most KEPT_MISSES made-up ids,
    which neither grows without limit nor pushes real people out."""
    directory = gateway_for(fake_slack).directory

    def asked(user_id: str) -> int:
        return sum(c.args.get("user") == user_id for c in fake_slack.calls_to("users.info"))

    assert await directory.profile("U0NOBODY0") is None
    assert await directory.profile("U0NOBODY0") is None
    assert asked("U0NOBODY0") == 1, "a miss is remembered"
    assert await directory.profile(BOB[0]) is not None
    for n in range(KEPT_MISSES):
        assert await directory.profile(f"U9{n:07d}") is None
    assert await directory.profile("U0NOBODY0") is None
    assert asked("U0NOBODY0") == 2, "the oldest miss was let go: the table is bounded"
    assert await directory.profile(BOB[0]) is not None
    assert asked(BOB[0]) == 1, "made-up ids do not push a real person out"


async def test_a_response_url_off_slack_gets_nothing_and_the_answer_goes_as_a_dm(
        tmp_path: Path) -> None:
    """A signed request's ``response_url`` naming a host that is not Slack's (here a local
    server standing in for an internal one) is never POSTed to: pimbot answers in a DM
    instead. Slack's own hooks (and, for tests and GovSlack, the origin of
    ``PIMBOT_SLACK_API_URL``) are the only places an answer goes."""
    fake = FakeSlack({BOB[0]: (BOB[1], BOB[2])})
    await fake.start()
    hits: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        hits.append(await request.text())
        return web.Response(text="ok")

    other = web.Application()
    other.router.add_post("/{tail:.*}", elsewhere)
    runner = web.AppRunner(other)
    await runner.setup()
    await web.TCPSite(runner, "localhost", 0).start()
    other_port = runner.addresses[0][1]
    replica = await start_slack_pimbot(tmp_path, fake)
    try:
        await replica.wait_ready()
        body = SlackDriver(None, fake).slash_body(BOB[0], "status", "off-slack")  # type: ignore[arg-type]
        body = body.replace(fake.response_url("off-slack").replace(":", "%3A").replace("/", "%2F"),
                            f"http%3A%2F%2Flocalhost%3A{other_port}%2Fcommands%2Fx")
        assert "localhost" in body
        headers = signed_headers(SIGNING_SECRET, body, int(time.time()), FORM)
        async with aiohttp.ClientSession() as http, http.post(
                replica.url + EVENTS, data=body, headers=headers) as response:
            assert response.status == 200
        async with asyncio.timeout(30):
            while not hits and not fake.posts_to(BOB[0]):  # the answer went one way
                assert replica.process.returncode is None, replica.output()
                await asyncio.sleep(0.05)
        assert hits == [], "pimbot POSTed its answer to a host that is not Slack's"
        assert "open requests" in str(fake.posts_to(BOB[0])[-1].args), "answered in a DM"
    finally:
        await replica.stop()
        await runner.cleanup()
        await fake.close()


MALFORMED = [  # requests aiohttp refuses while parsing them, before any route sees them
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\n"
    b"Content-Length: 4\r\n\r\nabcd",  # br without the Brotli package
]


async def _raw_answer(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


async def test_undecodable_and_malformed_requests_are_400_never_a_traceback(
        tmp_path: Path) -> None:
    """``Content-Encoding: gzip`` (or deflate) over bytes that are not that encoding fails
    while pimbot reads the body, before any signature is known; a request aiohttp cannot
    parse at all (``Content-Length`` beside ``Transfer-Encoding``, twice, negative, a NUL in
    a header, a header past 8 KiB, an encoding it has no decoder for) fails before any route.
    Each is a 400 and a WARNING line a minute with a count, never a 500, and never a
    traceback an unauthenticated sender can repeat into the log as often as they like."""
    fake = FakeSlack({BOB[0]: (BOB[1], BOB[2])})
    await fake.start()
    replica = await start_slack_pimbot(tmp_path, fake)
    try:
        await replica.wait_ready()
        async with aiohttp.ClientSession() as http:
            for encoding in ("gzip", "deflate"):
                headers = {"Content-Type": FORM, "Content-Encoding": encoding,
                           "X-Slack-Signature": "v0=" + "0" * 64,
                           "X-Slack-Request-Timestamp": str(int(time.time()))}
                async with http.post(replica.url + EVENTS, data=b"not compressed at all",
                                     headers=headers) as response:
                    assert response.status == 400, (encoding, await response.text())
        for request in MALFORMED:
            answer = await _raw_answer(replica.port, request)
            assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), (request, answer)
        assert await replica.get("/healthz") == (200, "ok\n")
    finally:
        await replica.stop()
        await fake.close()
    log = replica.log.read_text(errors="replace")
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]
    assert "could not be decoded" in log, log[-3000:]
    assert log.count("a malformed HTTP request refused (400)") == 1, log[-3000:]
