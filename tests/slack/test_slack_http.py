"""Signed Slack requests through the real ``POST /slack/events`` route, against a fake Web API.

The core is the real PimCore on the real database (SQLite and PostgreSQL) with a
RecordingProvider; only Slack itself is faked, at the HTTP level.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_slack import ALICE, BOB, CAROL, NOMAIL, FakeSlack
from slack_driver import FORM, JSON
from slack_rig import Rig, running
from sqlalchemy import func, select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow

POLICY = """
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: demo
    max_duration: 4h
    default_duration: 1h
    require_justification: true
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h}
    notify: ["#sec-alerts"]
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    """On SQLite and PostgreSQL: for flows whose outcome is stored."""
    async with running(db, fake_slack, POLICY) as value:
        yield value


@pytest.fixture
async def lite(sqlite_db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    """On SQLite only: for what the adapter alone decides (401s, acks, rendering, retries)."""
    async with running(sqlite_db, fake_slack, POLICY) as value:
        yield value


def button_values(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
    }


async def test_request_approve_grant_deactivate_over_http(rig: Rig) -> None:
    response, name = await rig.driver.slash(
        BOB[0], "activate prod-db-admin for 1h reason restore <!channel> backup"
    )
    assert response.status == 200
    await rig.settle()
    assert rig.reply_to(name)["response_type"] == "ephemeral"

    dm = rig.slack.posts_to(ALICE[0])
    assert len(dm) == 1, "the approver gets one DM"
    buttons = button_values(dm[0].args["blocks"])
    assert set(buttons) == {"pim_approve", "pim_deny"}
    request_id = buttons["pim_approve"]
    assert rig.slack.posts_to("#sec-alerts"), "the role's channel sees the request"
    assert not rig.slack.posts_to(BOB[0]), "nobody is notified of their own request"
    assert rig.provider.actions("grant") == []

    response, click = await rig.driver.click(ALICE[0], "pim_approve", request_id)
    assert response.status == 200
    await rig.settle()
    assert [c.email for c in rig.provider.actions("grant")] == [BOB[1]]
    assert rig.slack.responses(click)[0].args["response_type"] == "ephemeral"
    alice_dm = "D" + ALICE[0][1:]
    updates = [c for c in rig.slack.calls_to("chat.update") if c.args["channel"] == alice_dm]
    assert updates, "the approver's card is redrawn"
    assert updates[-1].args["ts"] == dm[0].answer["ts"]
    assert not button_values(updates[-1].args["blocks"]), "buttons disappear once decided"
    assert rig.slack.posts_to(BOB[0]), "the requester hears about the grant"

    response, name = await rig.driver.slash(BOB[0], "deactivate prod-db-admin")
    assert response.status == 200
    await rig.settle()
    assert [c.email for c in rig.provider.actions("revoke")] == [BOB[1]]
    assert "<!channel>" not in rig.slack.outgoing_text()
    assert "&lt;!channel&gt;" in rig.slack.outgoing_text()


async def pending_request(rig: Rig) -> str:
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h reason restore backup")
    await rig.settle()
    return button_values(rig.slack.posts_to(ALICE[0])[0].args["blocks"])["pim_approve"]


async def refusals(rig: Rig, email: str) -> int:
    async with rig.db.read() as session:
        query = select(func.count()).where(
            AuditEventRow.actor == email, AuditEventRow.outcome == "refused"
        )
        return int((await session.execute(query)).scalar_one())


@pytest.mark.parametrize("who", [BOB, CAROL], ids=["self-approval", "non-approver"])
async def test_approve_by_the_requester_or_an_outsider_is_refused(
    rig: Rig, who: tuple[str, str, str]
) -> None:
    request_id = await pending_request(rig)
    response, name = await rig.driver.click(who[0], "pim_approve", request_id)
    assert response.status == 200
    await rig.settle()
    answer = rig.reply_to(name)
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert answer["text"]
    assert rig.provider.actions("grant") == []
    assert await refusals(rig, who[1]) == 1
    assert [r.state for r in await rig.requests()] == ["pending_approval"]


@pytest.mark.parametrize(
    "tamper",
    ["forged", "missing", "stale", "no-timestamp", "word-timestamp", "float-timestamp",
     "bad-json", "bad-payload"],
)
async def test_unverifiable_requests_get_401_and_change_nothing(lite: Rig, tamper: str) -> None:
    body = lite.driver.slash_body(BOB[0], "activate prod-db-admin for 1h reason x", "bad")
    if tamper == "forged":
        response = await lite.driver.post(body, FORM, secret="not-the-secret")
    elif tamper == "stale":
        response = await lite.driver.post(body, FORM, timestamp=int(time.time()) - 6 * 60)
    elif tamper == "missing":
        response = await lite.driver.client.post(
            "/slack/events", data=body, headers={"Content-Type": FORM}
        )
    elif tamper.endswith("-timestamp") and tamper != "no-timestamp":
        stamp = "abc" if tamper == "word-timestamp" else "1e9"
        response = await lite.driver.post(body, FORM, headers={"X-Slack-Request-Timestamp": stamp})
    elif tamper in {"bad-json", "bad-payload"}:  # unsigned, and not even well-formed
        garbage, kind = ('{"not json', "application/json") if tamper == "bad-json" \
            else ("payload=%7Bbad", FORM)
        response = await lite.driver.client.post(
            "/slack/events", data=garbage, headers={"Content-Type": kind,
                                                    "X-Slack-Signature": "v0=" + "0" * 64,
                                                    "X-Slack-Request-Timestamp": "1"})
    else:
        headers = {"Content-Type": FORM, "X-Slack-Signature": "v0=" + "0" * 64}
        response = await lite.driver.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401, await response.text()  # never a 500 (and no traceback)
    await lite.settle()
    assert lite.slack.calls == [], "nothing reached Slack's API (so nothing reached the core)"
    assert await lite.requests() == []


async def test_url_verification_is_answered(lite: Rig) -> None:
    challenge = {"token": "t", "challenge": "3eZbrw1aBm2r", "type": "url_verification"}
    response = await lite.driver.post(json.dumps(challenge), JSON)
    assert response.status == 200
    assert (await response.json())["challenge"] == "3eZbrw1aBm2r"


async def test_slash_command_is_acked_before_the_work_is_done(lite: Rig) -> None:
    gate = lite.slack.hold("users.info")
    response, name = await lite.driver.slash(BOB[0], "activate prod-db-admin reason x")
    assert response.status == 200
    assert await response.text() == ""
    # The ack came back while the work is held at its first Slack call: the work goes on
    # after the ack (it may reach that call just after the ack, on a busy machine).
    for _ in range(500):
        if any(c.method == "users.info" for c in lite.slack.calls):
            break
        await asyncio.sleep(0.02)
    assert any(c.method == "users.info" for c in lite.slack.calls), "the work has started"
    assert lite.slack.responses(name) == [] and await lite.requests() == []
    gate.set()
    await lite.settle()
    assert lite.reply_to(name)["response_type"] == "ephemeral"
    assert len(await lite.requests()) == 1


async def test_a_person_without_an_email_is_told_so(lite: Rig) -> None:
    response, name = await lite.driver.slash(NOMAIL[0], "roles")
    assert response.status == 200
    await lite.settle()
    assert "email" in lite.reply_to(name)["text"]
    assert await lite.requests() == []


async def test_a_429_on_the_approval_dm_is_waited_out(lite: Rig) -> None:
    lite.slack.rate_limit("chat.postMessage", retry_after=1)
    await lite.driver.slash(BOB[0], "activate prod-db-admin for 1h reason x")
    await lite.settle()
    assert 429 in [c.status for c in lite.slack.calls if c.method == "chat.postMessage"]
    assert len(lite.slack.posts_to(ALICE[0])) == 1, "the approval card still arrives"


async def test_incomplete_activate_opens_the_modal_and_its_submit_files_the_request(
    rig: Rig,
) -> None:
    response, name = await rig.driver.slash(BOB[0], "activate")
    assert response.status == 200
    await rig.settle()
    opened = rig.slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].args["trigger_id"] == f"trigger-{name}"
    view = opened[0].args["view"]
    roles = next(b for b in view["blocks"] if b.get("block_id") == "role")["element"]
    assert [o["value"] for o in roles["options"]] == ["prod-db-admin"]
    assert rig.slack.responses(name) == [], "the modal is the whole answer"

    stale = {"role": "retired-role", "duration": "1h", "reason": "x"}
    bad = await rig.driver.submit(BOB[0], view, stale)
    assert bad.status == 200
    answer = await bad.json()
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"role"}
    assert await rig.requests() == []

    values = {"role": "prod-db-admin", "duration": "1h", "reason": "fix <!here> it"}
    good = await rig.driver.submit(BOB[0], view, values)
    assert good.status == 200
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["pending_approval"]
    assert rig.reply_to(name)["response_type"] == "ephemeral"
    assert len(rig.slack.posts_to(ALICE[0])) == 1
    assert "<!here>" not in rig.slack.outgoing_text()


async def test_deny_asks_for_a_reason_in_a_modal(rig: Rig) -> None:
    request_id = await pending_request(rig)
    await rig.driver.click(ALICE[0], "pim_deny", request_id)
    await rig.settle()
    view = rig.slack.calls_to("views.open")[-1].args["view"]
    assert view["callback_id"] == "pim_submit_deny"
    response = await rig.driver.submit(ALICE[0], view, {"reason": "not now"})
    assert response.status == 200
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["denied"]
    assert rig.slack.posts_to(BOB[0]), "the requester hears about the denial"


async def test_app_home_is_published_once_per_event_even_when_slack_retries(lite: Rig) -> None:
    first = await lite.driver.home_opened(BOB[0], "Ev0001")
    retry = await lite.driver.home_opened(BOB[0], "Ev0001", retry=1)
    assert (first.status, retry.status) == (200, 200)
    await lite.settle()
    published = lite.slack.calls_to("views.publish")
    assert len(published) == 1
    view = published[0].args["view"]
    assert published[0].args["user_id"] == BOB[0] and view["type"] == "home"
    assert "pim_activate" in button_values(view["blocks"])


async def test_activate_from_the_app_home_opens_the_modal(lite: Rig) -> None:
    await lite.driver.click(BOB[0], "pim_activate", "prod-db-admin", home=True)
    await lite.settle()
    view = lite.slack.calls_to("views.open")[-1].args["view"]
    role = next(b for b in view["blocks"] if b.get("block_id") == "role")["element"]
    assert role["initial_option"]["value"] == "prod-db-admin"
