"""A colleague with no part in a request or a review item, at the real ``pimbot run`` over
Slack: signed button presses whose value is another person's request (or review item), and
modal submits whose ``private_metadata`` names it, change nothing, open no form for them and
tell them nothing of it (not the requester, the reason, or the kind of item)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from fake_slack import ALICE, BOB, CAROL, FakeSlack
from slack_driver import SlackDriver, dm_of
from slack_process import start_slack_pimbot, until

LEAD = ("U0SECLEAD1", "sec-lead@example.com", "Sec Lead")
REASON = "restore the ledger backup"


def _buttons(fake: FakeSlack, user_id: str) -> dict[str, str]:
    """action id → value of the buttons on the cards pimbot sent to a person's DM."""
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button" and "value" in node:
                found[str(node["action_id"]).split(":", 1)[0]] = str(node["value"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk([c.args for c in fake.calls_to("chat.postMessage")
          if c.args.get("channel") in {user_id, dm_of(user_id)}])
    return found


def _answered(fake: FakeSlack, name: str) -> bool:
    """pimbot answered request ``name``: on its response_url, or with a modal."""
    return bool(fake.responses(name)) or any(
        c.args.get("trigger_id") == f"trigger-{name}" for c in fake.calls_to("views.open"))


def _modal(callback: str, value: str, response_url: str, *inputs: str) -> dict[str, Any]:
    """A modal as pimbot draws one, whose metadata names ``value``."""
    return {"type": "modal", "callback_id": callback,
            "private_metadata": json.dumps({"value": value, "response_url": response_url}),
            "blocks": [{"type": "input", "block_id": name,
                        "element": {"type": "plain_text_input", "action_id": name}}
                       for name in inputs]}


async def test_forged_slack_presses_and_submits_naming_another_request_tell_nothing(
        tmp_path: Path) -> None:
    fake = FakeSlack({p[0]: (p[1], p[2]) for p in (BOB, ALICE, CAROL, LEAD)})
    await fake.start()
    replica = await start_slack_pimbot(tmp_path, fake)
    try:
        await replica.wait_ready()
        async with aiohttp.ClientSession(base_url=replica.url) as http:
            slack = SlackDriver(http, fake)  # type: ignore[arg-type]
            await slack.slash(BOB[0], f"activate prod-db-admin for 1h reason {REASON}")
            await until(lambda: "pim_approve" in _buttons(fake, ALICE[0]), replica)
            request = _buttons(fake, ALICE[0])["pim_approve"]
            await slack.slash(LEAD[0], "review start prod-db-admin")
            await until(lambda: "pim_review_remove" in _buttons(fake, ALICE[0]), replica)
            item = _buttons(fake, ALICE[0])["pim_review_remove"]
            mark = len(fake.calls)

            names = []
            for action, value in (("pim_approve", request), ("pim_deny", request),
                                  ("pim_cancel", request), ("pim_extend", request),
                                  ("pim_deactivate", request), ("pim_review_keep", item),
                                  ("pim_review_remove", item)):
                response, name = await slack.click(CAROL[0], action, value)
                assert response.status == 200
                names.append(name)
            acks = []
            for callback, value, inputs in (
                    ("pim_submit_approve", request, ("comment",)),
                    ("pim_submit_deny", request, ("reason",)),
                    ("pim_submit_extend", request, ("duration",)),
                    ("pim_submit_review_remove", item, ("reason",))):
                name = slack.next_name()
                names.append(name)
                view = _modal(callback, value, fake.response_url(name), *inputs)
                response = await slack.submit(CAROL[0], view, dict.fromkeys(inputs, "30m"))
                assert response.status == 200
                acks.append(await response.text())
            await until(lambda: all(_answered(fake, n) for n in names), replica)
        told = "\n".join([*acks, *(json.dumps(c.args) for c in fake.calls[mark:])])
        for secret in (BOB[1], BOB[2], REASON, "Not justified", "Remove access"):
            assert secret not in told, f"carol was told {secret!r}: {told}"
        opened = [c for c in fake.calls[mark:] if c.method == "views.open"]
        assert not opened, f"a form was opened for carol: {opened}"
        assert "not an approver of request" in told and "not a reviewer of item" in told
        assert await replica.stop() == 0
    finally:
        await replica.reap()
        await fake.close()
