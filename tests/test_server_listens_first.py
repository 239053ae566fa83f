"""``pimbot run`` binds its port before it reads the policy, as a real process.

The policy file is a FIFO the test writes only after it has seen the listener answer:
``/healthz`` 200, ``/readyz`` 503 saying it is starting, the Slack route 503 with
``Retry-After`` (each of them then counted in ``/metrics``, as the composed app counts its
own). A ``pimbot run`` that read (or even opened) its policy before listening
would wait on the FIFO forever and never answer, so the order is proved without a clock.
Then the start completes and a first activation over the Slack route works. A malformed
policy still fails the start with its YAML-path errors and exit 1 (after the listener came
up), and SIGTERM while the policy has not arrived exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import RequestRow
from server_process import clean_env, pimbot_command

_SLACK_TESTS = Path(__file__).resolve().parent / "slack"
if str(_SLACK_TESTS) not in sys.path:
    sys.path.insert(0, str(_SLACK_TESTS))

from fake_slack import BOB, FakeSlack  # noqa: E402
from slack_driver import FORM, SIGNING_SECRET, SlackDriver  # noqa: E402

LISTENING = "HTTP listening on "
GUARD = 60.0  # a process that never gets there fails the test, it never hangs it

POLICY = """\
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  staging-deploy:
    provider: demo
    max_duration: 4h
assignments:
  - {user: bob@example.com, role: staging-deploy, type: eligible}
"""

BROKEN = """\
providers:
  demo: {type: noop}
roles:
  staging-deploy:
    provider: nowhere
    max_duration: 4h
"""


@dataclass
class Started:
    process: asyncio.subprocess.Process
    base: str
    policy: Path
    stderr: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.stderr)


async def _drain(process: asyncio.subprocess.Process, lines: list[str],
                 listening: asyncio.Future[int]) -> None:
    assert process.stderr is not None
    async for raw in process.stderr:
        line = raw.decode(errors="replace")
        lines.append(line)
        if LISTENING in line and not listening.done():
            listening.set_result(int(line.rsplit(":", 1)[1]))
    if not listening.done():
        listening.set_exception(AssertionError("exited before listening:\n" + "".join(lines)))


@contextlib.asynccontextmanager
async def started(tmp_path: Path, **settings: str) -> AsyncIterator[Started]:
    """``pimbot run`` on a free port whose policy file is a FIFO nobody has written yet."""
    policy = tmp_path / "policy.yaml"
    os.mkfifo(policy)
    env = clean_env(tmp_path, PIMBOT_HOST="127.0.0.1", PIMBOT_PORT="0", **settings)
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "run", cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: list[str] = []
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    drain = asyncio.create_task(_drain(process, lines, listening))
    try:
        port = await asyncio.wait_for(asyncio.shield(listening), GUARD)
        yield Started(process, f"http://127.0.0.1:{port}", policy, lines)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await drain
        if not listening.cancelled():
            listening.exception()  # seen: no "exception was never retrieved" at exit


async def opened_for_reading(fifo: Path) -> int:
    """The FIFO's writing end, once pimbot has opened it for reading (pimbot then waits in
    ``read`` until the test writes and closes it)."""
    async with asyncio.timeout(GUARD):
        while True:
            try:
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: no reader yet
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
            await asyncio.sleep(0.02)


async def write_policy(fifo: Path, text: str) -> None:
    """Write ``text`` into the FIFO once pimbot has opened it for reading."""
    fd = await opened_for_reading(fifo)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "w", encoding="utf-8") as pipe:
        pipe.write(text)


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


def counted_requests(metrics: str, method: str, route: str, status: str) -> float:
    """``pimbot_http_requests_total`` for one method, route and status in a scrape (0 when
    it has no such line)."""
    wanted = (f'pimbot_http_requests_total{{method="{method}",route="{route}",'
              f'status="{status}"}} ')
    lines = [line for line in metrics.splitlines() if line.startswith(wanted)]
    return float(lines[0].removeprefix(wanted)) if lines else 0.0


async def wait_ready(http: aiohttp.ClientSession, run: Started) -> None:
    async with asyncio.timeout(GUARD):
        while (await _get(http, f"{run.base}/readyz"))[0] != 200:
            assert run.process.returncode is None, run.output()
            await asyncio.sleep(0.05)


async def wait_active(url: str) -> None:
    db = Database(url)
    try:
        async with asyncio.timeout(GUARD):
            while True:
                async with db.read() as session:
                    states = list((await session.execute(select(RequestRow.state))).scalars())
                if states == ["active"]:
                    return
                await asyncio.sleep(0.05)
    finally:
        await db.dispose()


async def stop(run: Started) -> int:
    run.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(run.process.wait(), GUARD)


async def test_the_port_answers_before_the_policy_is_read_then_an_activation_works(
        tmp_path: Path) -> None:
    fake = FakeSlack({BOB[0]: (BOB[1], BOB[2])})
    await fake.start()
    try:
        async with started(tmp_path, PIMBOT_ADAPTERS="slack", SLACK_BOT_TOKEN="xoxb-test",
                           SLACK_SIGNING_SECRET=SIGNING_SECRET,
                           PIMBOT_SLACK_API_URL=fake.api_url) as run, \
                aiohttp.ClientSession(base_url=run.base) as http:
            driver = SlackDriver(http, fake)  # type: ignore[arg-type]
            assert await _get(http, "/healthz") == (200, "ok\n")
            status, text = await _get(http, "/readyz")
            assert status == 503 and "starting" in text, text
            body = driver.slash_body(BOB[0], "activate staging-deploy for 30m reason x", "early")
            early = await driver.post(body, FORM)
            assert (early.status, early.headers.get("Retry-After")) == (503, "5")
            assert "starting" in await early.text()

            await write_policy(run.policy, POLICY)  # only now can the start go on
            await wait_ready(http, run)
            counted = await _get(http, "/metrics")  # what the listener turned away counts
            assert counted[0] == 200, counted
            assert counted_requests(counted[1], "POST", "/slack/events", "503") == 1.0, \
                counted[1]
            assert counted_requests(counted[1], "GET", "/healthz", "200") == 1.0, counted[1]
            response, _ = await driver.slash(BOB[0], "activate staging-deploy for 30m reason x")
            assert response.status == 200
            await wait_active(f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}")
            assert await stop(run) == 0, run.output()
    finally:
        await fake.close()


async def test_a_malformed_policy_fails_the_start_after_the_port_answered(
        tmp_path: Path) -> None:
    async with started(tmp_path, PIMBOT_ADAPTERS="none") as run, \
            aiohttp.ClientSession(base_url=run.base) as http:
        assert await _get(http, "/healthz") == (200, "ok\n")  # alive while it reads
        await write_policy(run.policy, BROKEN)
        code = await asyncio.wait_for(run.process.wait(), GUARD)
    assert code == 1
    assert f"{run.policy}: roles.staging-deploy.provider: unknown provider 'nowhere'" \
        in run.output(), run.output()


async def test_sigterm_while_the_policy_is_being_read_exits_0(tmp_path: Path) -> None:
    async with started(tmp_path, PIMBOT_ADAPTERS="none") as run, \
            aiohttp.ClientSession(base_url=run.base) as http:
        writer = await opened_for_reading(run.policy)  # pimbot now waits in its read
        try:
            assert await _get(http, "/healthz") == (200, "ok\n")
            status, text = await _get(http, "/readyz")
            assert status == 503 and "reading the policy file" in text, text
            assert await stop(run) == 0, run.output()
        finally:
            os.close(writer)
