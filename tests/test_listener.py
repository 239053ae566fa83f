"""The listener ``pimbot run`` binds first, in-process: what it answers before the composed
app is behind it, once a start failed, and that afterwards the app gets every request
(body, one ``100 Continue`` for ``Expect``, and all) on the same port; what it answered
itself is counted in the app's metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock
from pimbot_server.listener import Listener
from pimbot_server.metrics import Metrics
from pimbot_server.startup import Phase, StartupProgress


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    front = Listener(StartupProgress())
    await front.start("127.0.0.1", 0)
    yield front
    await front.stop()


async def _ask(listener: Listener, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{listener.port}{path}") as response:
        return response.status, await response.text()


async def test_before_the_app_health_answers_and_a_failed_start_says_so(
        listener: Listener) -> None:
    assert await _ask(listener, "/healthz") == (200, "ok\n")
    assert await _ask(listener, "/readyz") == (503, "not ready: policy not applied yet "
                                                    "(starting)\n")
    listener.progress.enter(Phase.FAILED)
    assert await _ask(listener, "/healthz") == (503, "start-up failed\n")
    status, text = await _ask(listener, "/slack/events")
    assert status == 503 and "start-up failed" in text


NAME = web.AppKey("name", str)


async def test_the_served_app_gets_each_request_on_the_same_port(listener: Listener) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.app[NAME]}: {await request.text()}")

    app = web.Application()
    app[NAME] = "composed"
    app.router.add_post("/api/messages", echo)
    await listener.serve(app)
    url = f"http://127.0.0.1:{listener.port}/api/messages"
    async with aiohttp.ClientSession() as http:
        for expect in (False, True):
            async with http.post(url, data=b"x" * 2048, expect100=expect) as response:
                assert (response.status, await response.text()) == (200, "composed: "
                                                                    + "x" * 2048), expect
        async with http.get(url) as response:
            assert response.status == 405  # the composed app's router answers
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"POST /api/messages HTTP/1.1\r\nHost: pimbot\r\nContent-Length: 3\r\n"
                 b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"abc")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"composed: abc"), answer


def _counted(metrics: Metrics, method: str, route: str, status: str) -> float | None:
    return metrics.registry.get_sample_value(
        "pimbot_http_requests_total", {"method": method, "route": route, "status": status})


async def test_what_it_answers_is_counted_before_and_after_the_metrics_exist(
        listener: Listener, sqlite_db: Database) -> None:
    """Answers given before ``count_into`` are handed over then; answers given after it
    (the app still starting behind the port) are counted at once; any other path is one
    ``unmatched`` label, not a label per path."""
    listener.progress.enter(Phase.FAILED)  # the chat routes answer at once, without a hold
    assert (await _ask(listener, "/slack/events"))[0] == 503
    assert (await _ask(listener, "/healthz"))[0] == 503
    metrics = Metrics(sqlite_db, FakeClock())
    listener.count_into(metrics.http_answered)
    assert _counted(metrics, "GET", "/slack/events", "503") == 1.0
    assert _counted(metrics, "GET", "/healthz", "503") == 1.0
    for path in ("/api/messages", "/wp-login.php", "/x/1", "/x/2"):
        assert (await _ask(listener, path))[0] == 503
    assert _counted(metrics, "GET", "/api/messages", "503") == 1.0
    assert _counted(metrics, "GET", "unmatched", "503") == 3.0
    assert _counted(metrics, "GET", "/slack/events", "503") == 1.0, "each counted once"
