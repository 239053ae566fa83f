"""User text cannot imitate the card: a reason, ticket or denial reason that carries
formatting, line breaks that start a fake field, or a bare link, reaches the approvers' cards
as an inert one-line quotation in ``plain_text`` beside its label, never as mrkdwn.

Everything goes through signed requests to ``POST /slack/events``; the cards are read back
from what pimbot posted to the fake Slack Web API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_rig import Rig, running

from pimbot.store.database import Database

POLICY = """
groups:
  dba-leads: [alice@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    provider: demo
    max_duration: 4h
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1}
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""
FORGED = "restore\n*Approvals*\n1 of 1\n>_Approved by_ ~nobody~ `sec-lead` https://evil.example/approve"


@pytest.fixture
async def rig(sqlite_db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(sqlite_db, fake_slack, POLICY) as value:
        yield value


def text_objects(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for block in blocks:
        for key in ("text", "label"):
            if isinstance(block.get(key), dict):
                yield block[key]
        yield from block.get("fields", [])
        for element in block.get("elements", []):
            yield element.get("text") if isinstance(element.get("text"), dict) else element


def approval_card(rig: Rig) -> list[dict[str, Any]]:
    (dm,) = rig.slack.posts_to(ALICE[0])
    return list(dm.args["blocks"])


def assert_inert(blocks: list[dict[str, Any]], said: str) -> None:
    """What the person wrote is one quoted plain_text line; no mrkdwn carries any of it."""
    objects = list(text_objects(blocks))
    mrkdwn = [o["text"] for o in objects if o.get("type") == "mrkdwn"]
    assert [t for t in mrkdwn if "Approvals" in t] == ["*Approvals*\n0 of 1"], mrkdwn
    assert not [t for t in mrkdwn if "Approved by" in t or "evil" in t], mrkdwn
    quoted = [o for o in objects if o.get("type") == "plain_text" and "evil" in o["text"]]
    assert len(quoted) == 1, objects
    assert quoted[0]["emoji"] is False
    value = quoted[0]["text"]
    assert value.startswith("“") and value.endswith("”") and "\n" not in value
    assert said in value
    assert "https://evil" not in json.dumps(blocks) and "evil[.]example" in value


async def test_a_forged_reason_from_the_modal_is_quoted_inert_on_the_card(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], "activate")
    await rig.settle()
    view = rig.slack.calls_to("views.open")[-1].args["view"]
    values = {"role": "prod-db-admin", "duration": "1h", "reason": FORGED}
    assert (await rig.driver.submit(BOB[0], view, values)).status == 200
    await rig.settle()
    blocks = approval_card(rig)
    assert_inert(blocks, "restore ↵ *Approvals* ↵ 1 of 1 ↵ &gt;_Approved by_")
    labels = [o["text"] for o in text_objects(blocks) if o.get("text") == "*Reason*"]
    assert labels == ["*Reason*"], "the label is pimbot's, beside the quotation"


async def test_a_forged_reason_and_ticket_from_the_command_are_quoted_inert(rig: Rig) -> None:
    text = ("activate prod-db-admin for 1h ticket *INC-1*_x_ reason *Approvals* 1 of 1 "
            "https://evil.example/approve")
    await rig.driver.slash(BOB[0], text)
    await rig.settle()
    blocks = approval_card(rig)
    assert_inert(blocks, "*Approvals* 1 of 1")
    plain = [o["text"] for o in text_objects(blocks) if o.get("type") == "plain_text"]
    assert "“*INC-1*_x_”" in plain, "the ticket is a quotation too"


async def test_a_denial_reason_is_quoted_apart_from_the_decision_line(rig: Rig) -> None:
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h reason restore")
    await rig.settle()
    (request,) = await rig.requests()
    await rig.driver.slash(ALICE[0], f"deny {request.id} reason ok *Approved by* sec-lead")
    await rig.settle()
    told = rig.slack.posts_to(BOB[0])[-1].args["blocks"]
    objects = list(text_objects(told))
    mrkdwn = [o["text"] for o in objects if o.get("type") == "mrkdwn"]
    assert any(t == "Denied by alice@example.com" for t in mrkdwn), mrkdwn
    assert not [t for t in mrkdwn if "Approved by" in t], mrkdwn
    plain = [o["text"] for o in objects if o.get("type") == "plain_text"]
    assert "“ok *Approved by* sec-lead”" in plain
