"""``tools/slack_command.py`` against a real ``pimbot run`` with Slack: the words after
``/pim`` may be typed unquoted, as in Slack, or quoted as one argument."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from fake_slack import BOB, WORKSPACE, FakeSlack
from slack_driver import SIGNING_SECRET
from slack_process import start_slack_pimbot

TOOL = Path(__file__).resolve().parents[2] / "tools" / "slack_command.py"


def _send(url: str, answer_to: str, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--url", url, "--secret", SIGNING_SECRET,
         "--user", BOB[0], "--team", WORKSPACE, "--response-url", answer_to, *words],
        capture_output=True, text=True, timeout=60, check=False)


async def test_the_words_of_a_command_need_no_quotes(fake_slack: FakeSlack,
                                                      tmp_path: Path) -> None:
    replica = await start_slack_pimbot(tmp_path, fake_slack)
    try:
        await replica.wait_ready()
        unquoted = await asyncio.to_thread(
            _send, replica.url, fake_slack.response_url("unquoted"),
            "activate", "prod-db-admin", "for", "1h", "reason", "restore", "the", "backup")
        quoted = await asyncio.to_thread(
            _send, replica.url, fake_slack.response_url("quoted"), "whois prod-db-admin")
        for sent in (unquoted, quoted):
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert sent.stdout.startswith("HTTP 200")
        async with asyncio.timeout(60):  # a hang fails the test, it never blocks CI
            while not (fake_slack.responses("unquoted") and fake_slack.responses("quoted")):
                assert replica.process.returncode is None, replica.output()
                await asyncio.sleep(0.05)
        answer = str(fake_slack.responses("unquoted")[0].args)
        assert "prod-db-admin" in answer and "unrecognized" not in answer, answer
        requested = [c for c in fake_slack.calls_to("chat.postMessage")
                     if "restore the backup" in str(c.args)]
        assert requested, "the approver's card carries the whole reason, word by word"
        assert await replica.stop() == 0
    finally:
        await replica.reap()
