"""MFA on Slack: enrolment only in a DM (key and QR code posted there, deleted later: see
test_slack_mfa_cleanup.py), step-up at activation and at approval, all through signed requests
to ``/slack/events`` against the fake Slack Web API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pyotp
import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_driver import dm_of
from slack_rig import KEY, Rig, running

import totp_codes as codes
from pimbot.store.database import Database
from pimbot.workflow.mfa.qr import PNG_SIGNATURE, qr_png
from pimbot_slack.gateway import IMAGE_ABOVE, IMAGE_NOT_SENT

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
    require_mfa: true
    require_justification: true
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h,
               require_mfa: true}
    notify: ["#sec-alerts"]
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""
CHANNEL = ("C0PIMCHAN1", "pim-requests")


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY) as value:
        yield value


@pytest.fixture
async def lite(sqlite_db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(sqlite_db, fake_slack, POLICY) as value:
        yield value


def answer_text(answer: dict[str, Any]) -> str:
    """Everything a person reads in an answer: its text and every block's text."""
    parts = [str(answer.get("text", ""))]
    for block in answer.get("blocks", []):
        for item in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]:
            parts.append(str(item.get("text", "")) if isinstance(item, dict) else "")
    return "\n".join(parts).replace("&amp;", "&")


def wrong_code(rig: Rig, totp: pyotp.TOTP) -> str:
    """A code the authenticator does not show in any step pimbot accepts now."""
    return codes.wrong_code(totp, rig.clock.now())


async def test_enrol_in_a_channel_is_refused_in_one_line(lite: Rig) -> None:
    _, name = await lite.driver.slash(BOB[0], "mfa enroll", channel=CHANNEL)
    await lite.settle()
    answer = lite.reply_to(name)
    assert answer["response_type"] == "ephemeral"
    assert "direct message" in answer["text"] and "\n" not in answer["text"]
    assert lite.slack.uploads == {}
    _, name = await lite.driver.slash(BOB[0], "mfa status")
    await lite.settle()
    assert "not enrolled" in lite.reply_to(name)["text"]


async def test_enrol_in_the_dm_uploads_the_qr_code_there_and_never_logs_the_key(
    lite: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, name = await lite.driver.slash(BOB[0], "mfa enroll")
    await lite.settle()
    answer = answer_text(lite.reply_to(name))
    assert "mfa confirm" in answer, "the person is told how to confirm"
    assert not KEY.search(answer), "the key is in the deletable DM, not in the answer"
    shown = lite.enrolment_post(BOB[0]).replace("&amp;", "&")
    found = KEY.search(shown)
    assert found and "otpauth://totp/" in shown and IMAGE_ABOVE in shown
    secret = found.group(1)

    files = lite.slack.files_in(dm_of(BOB[0]))
    assert len(files) == 1 and files[0].data.startswith(PNG_SIGNATURE)
    uri = pyotp.TOTP(secret).provisioning_uri(name=BOB[1], issuer_name="pimbot")
    assert files[0].data == qr_png(uri), "the image is the QR code of this very key"
    assert secret not in files[0].title + files[0].alt_txt + files[0].filename

    code = lite.code(pyotp.TOTP(secret))
    _, name = await lite.driver.slash(BOB[0], f"mfa confirm {code}")
    await lite.settle()
    assert "confirmed" in lite.reply_to(name)["text"]
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert logged, "DEBUG logging was on"
    assert secret not in logged and code not in logged


async def test_a_failed_upload_still_gives_the_key_and_says_so(lite: Rig) -> None:
    lite.slack.fail("files.getUploadURLExternal", "not_allowed_token_type")
    await lite.driver.slash(BOB[0], "mfa enroll")
    await lite.settle()
    shown = lite.enrolment_post(BOB[0])
    assert KEY.search(shown) and IMAGE_NOT_SENT in shown
    assert lite.slack.files_in(dm_of(BOB[0])) == []


async def test_activation_modal_needs_a_valid_code(rig: Rig) -> None:
    totp = await rig.enrol(BOB[0])
    _, name = await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h reason restore")
    await rig.settle()
    opened = rig.slack.calls_to("views.open")[-1].args
    assert opened["trigger_id"] == f"trigger-{name}" and rig.slack.responses(name) == []
    view = opened["view"]
    code_block = next(b for b in view["blocks"] if b.get("block_id") == "code")
    assert code_block["element"]["max_length"] == 6
    values = {"role": "prod-db-admin", "duration": "1h", "reason": "restore"}

    bad = await rig.driver.submit(BOB[0], view, {**values, "code": wrong_code(rig, totp)})
    answer = await bad.json()
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"code"}
    await rig.settle()
    assert await rig.requests() == []

    good = await rig.driver.submit(BOB[0], view, {**values, "code": rig.code(totp)})
    assert good.status == 200 and await good.text() == ""
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["pending_approval"]
    assert rig.slack.posts_to(ALICE[0]), "the approver is asked"


async def test_code_in_the_slash_command(rig: Rig) -> None:
    totp = await rig.enrol(BOB[0])
    text = "activate prod-db-admin for 1h code {} reason restore"
    _, name = await rig.driver.slash(BOB[0], text.format(wrong_code(rig, totp)))
    await rig.settle()
    assert "code" in rig.reply_to(name)["text"].lower()
    assert await rig.requests() == []
    await rig.driver.slash(BOB[0], text.format(rig.code(totp)))
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["pending_approval"]


async def test_approval_step_up_opens_a_modal_for_the_approvers_code(rig: Rig) -> None:
    bob = await rig.enrol(BOB[0])
    alice = await rig.enrol(ALICE[0])
    await rig.driver.slash(BOB[0], f"activate prod-db-admin for 1h code {rig.code(bob)} reason x")
    await rig.settle()
    card = rig.slack.posts_to(ALICE[0])[-1].args["blocks"]
    request_id = next(
        e["value"] for b in card if b["type"] == "actions" for e in b["elements"]
        if e["action_id"] == "pim_approve"
    )
    _, name = await rig.driver.click(ALICE[0], "pim_approve", request_id)
    await rig.settle()
    opened = rig.slack.calls_to("views.open")[-1].args
    assert opened["trigger_id"] == f"trigger-{name}"
    view = opened["view"]
    assert view["callback_id"] == "pim_submit_approve"
    assert rig.provider.calls == []

    bad = await rig.driver.submit(ALICE[0], view, {"code": wrong_code(rig, alice)})
    answer = await bad.json()
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"code"}
    await rig.settle()
    assert [r.state for r in await rig.requests()] == ["pending_approval"]
    assert rig.provider.calls == []

    good = await rig.driver.submit(ALICE[0], view, {"code": rig.code(alice)})
    assert good.status == 200
    await rig.settle()
    assert [c.email for c in rig.provider.actions("grant")] == [BOB[1]]
    assert [r.state for r in await rig.requests()] == ["active"]
