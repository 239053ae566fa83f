"""An outsider at the real ``pimbot run`` over Slack (signed slash commands against the fake
Slack Web API): a TOTP code and a bidirectional trick typed into a reason never reach Slack,
approvers or the log as typed."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from fake_slack import ALICE, BOB, FakeSlack
from slack_driver import SlackDriver
from slack_process import start_slack_pimbot, until

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from replica_process import Replica  # noqa: E402

CODE = "482913"


@asynccontextmanager
async def _pimbot_on_slack(tmp_path: Path, *people: tuple[str, str, str]
                           ) -> AsyncIterator[tuple[FakeSlack, Replica, SlackDriver]]:
    """A real ``pimbot run`` on the fake Slack, ready, with a driver signing its requests."""
    fake = FakeSlack({person[0]: (person[1], person[2]) for person in people})
    await fake.start()
    replica = await start_slack_pimbot(tmp_path, fake)
    try:
        await replica.wait_ready()
        async with aiohttp.ClientSession(base_url=replica.url) as http:
            yield fake, replica, SlackDriver(http, fake)  # type: ignore[arg-type]
    finally:
        await replica.reap()
        await fake.close()


async def test_a_code_and_a_bidi_trick_in_a_slack_reason_reach_nobody(tmp_path: Path) -> None:
    async with _pimbot_on_slack(tmp_path, BOB, ALICE) as (fake, replica, slack):
        response, name = await slack.slash(
            BOB[0], f"activate prod-db-admin for 1h reason restore code {CODE} the backup")
        assert response.status == 200
        answered = await response.text()
        await until(lambda: answered or fake.responses(name), replica)
        response, _ = await slack.slash(
            BOB[0], "activate prod-db-admin for 1h reason restore \u202epukcab\u2066 now")
        assert response.status == 200
        await until(lambda: fake.calls_to("chat.postMessage"), replica)
        said = answered + json.dumps([c.args for c in fake.calls], ensure_ascii=False)
        assert "authenticator code" in said, said
        assert CODE not in said, "the code reached Slack"
        assert "\u202e" not in said and "\u2066" not in said
        cards = json.dumps([c.args for c in fake.calls_to("chat.postMessage")],
                           ensure_ascii=False)
        assert "restore pukcab now" in cards, cards  # the approver's card, as stored
        assert await replica.stop() == 0
        assert CODE not in replica.output(), "the code reached the log"


AUDITOR = ("U0AUDIT001", "audit@example.com", "Auditor")


async def test_a_reason_in_the_audit_answer_cannot_format_the_auditors_view(
        tmp_path: Path) -> None:
    """The audit answer is mrkdwn: a reason there is a one-line quotation whose formatting
    marks are shown as look-alikes, so it cannot bold, strike or code-span its own words or
    pimbot's around it (``~`` in a reason and another ``~`` later on the line)."""
    async with _pimbot_on_slack(tmp_path, BOB, ALICE, AUDITOR) as (fake, replica, slack):
        await slack.slash(BOB[0], "activate prod-db-admin for 1h reason restore ~the "
                                  "*Approved by alice* `now` _soon_")
        await until(lambda: fake.calls_to("chat.postMessage"), replica)
        _, name = await slack.slash(AUDITOR[0], "audit bob@example.com")
        await until(lambda: fake.responses(name), replica)
    (answer,) = fake.responses(name)
    mrkdwn = [b["text"]["text"] for b in answer.args["blocks"]
              if b.get("text", {}).get("type") == "mrkdwn"]
    shown = "\n".join(mrkdwn)
    assert "activation.requested" in shown, shown
    assert "“restore ∼the ∗Approved by alice∗ ˋnowˋ ˍsoonˍ”" in shown, shown
    assert not any(mark in shown for mark in "*~`"), shown
