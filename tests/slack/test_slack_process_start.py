"""``pimbot run`` with Slack over HTTP, as a real process against the fake Slack Web API:
it starts without a warning from bolt (bolt is given the Web API client that carries the
bot token, and no second copy of the token to ignore), and serves a signed event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from fake_slack import BOB, FakeSlack
from slack_driver import SlackDriver
from slack_process import start_slack_pimbot


async def test_pimbot_run_with_slack_starts_without_a_bolt_warning_and_serves(
        tmp_path: Path) -> None:
    fake = FakeSlack({BOB[0]: (BOB[1], BOB[2])})
    await fake.start()
    replica = await start_slack_pimbot(tmp_path, fake)
    try:
        await replica.wait_ready()
        async with aiohttp.ClientSession(base_url=replica.url) as http:
            driver = SlackDriver(http, fake)  # type: ignore[arg-type]
            response = await driver.home_opened(BOB[0], "Ev0START001")
            assert response.status == 200
        async with asyncio.timeout(60):  # a hang fails the test, it never blocks CI
            while not fake.calls_to("views.publish"):
                assert replica.process.returncode is None, replica.output()
                await asyncio.sleep(0.05)
        assert await replica.stop() == 0
        log = replica.output()
        assert "will be unused" not in log and "will be ignored" not in log, log
        assert not [line for line in log.splitlines() if "WARNING pimbot_slack" in line], log
    finally:
        await replica.reap()
        await fake.close()
