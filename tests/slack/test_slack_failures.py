"""A provider's own words (a command's standard error, a database's message) never reach
chat: when a grant fails or a revoke keeps failing, channels, approvers and the requester see
a short reason and an error id; the audit log and the logs hold the detail under that id.
Signed requests to ``/slack/events``, a real ``command`` provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fake_slack import ALICE, BOB, FakeSlack
from slack_rig import Rig, running
from sqlalchemy import select

from pimbot.providers.command import CommandAction, CommandProvider
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
    provider: demo
    require_justification: false
    approval: {required: true, approvers: [group:dba-leads]}
    notify: ["#sec-alerts"]
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""
LEAK = "FATAL: password authentication failed for user app_admin at 10.20.30.40 (pw=hunter2)"
ERROR_ID = re.compile(r"\(error (e[a-z0-9]{6})\)")


def provider(grant: str, revoke: str) -> CommandProvider:
    def script(body: str) -> tuple[str, ...]:
        return ("/bin/sh", "-c", body)

    return CommandProvider("demo", {CommandAction.GRANT: script(grant),
                                    CommandAction.REVOKE: script(revoke),
                                    CommandAction.CHECK: script("exit 0")},
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, timeout=10)


FAILING = f"echo 'connecting…' >&2; echo '{LEAK}' >&2; exit 3"


@pytest.fixture
async def failing_grant(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY, provider(FAILING, "exit 0")) as value:
        yield value


@pytest.fixture
async def failing_revoke(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY.replace("    approval: {required: true, "
                       "approvers: [group:dba-leads]}\n", ""), provider("exit 0", FAILING)) as rig:
        yield rig


async def events(rig: Rig, action: str) -> list[AuditEventRow]:
    async with rig.db.read() as session:
        return list((await session.execute(
            select(AuditEventRow).where(AuditEventRow.action == action))).scalars())


async def wait_out_retries(rig: Rig, times: int) -> None:
    for _ in range(times):
        rig.clock.advance(timedelta(minutes=1))
        await rig.settle()


async def test_a_failed_grant_shows_a_short_reason_and_an_error_id_not_the_stderr(
    failing_grant: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = failing_grant
    caplog.set_level(logging.INFO)
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h")
    await rig.settle()
    card = rig.slack.posts_to(ALICE[0])[0].args["blocks"]
    request_id = next(e["value"] for b in card if b["type"] == "actions" for e in b["elements"])
    await rig.driver.click(ALICE[0], "pim_approve", request_id)
    await rig.settle()
    await wait_out_retries(rig, 8)  # the grant job's retries, then it gives up
    assert [r.state for r in await rig.requests()] == ["failed"]

    sent = rig.slack.outgoing_text()
    assert "password authentication" not in sent and "hunter2" not in sent and "10.20" not in sent
    assert "exited with" not in sent, "not even pimbot's wrapping of the provider's words"
    seen = {
        "channel": str([p.args for p in rig.slack.posts_to("#sec-alerts")][-1]),
        "approver": str([c.args for c in rig.slack.calls_to("chat.update")][-1]),
        "requester": str([p.args for p in rig.slack.posts_to(BOB[0])][-1]),
    }
    ids = set()
    for who, text in seen.items():
        found = ERROR_ID.search(text)
        assert found and "the provider could not complete the grant" in text, (who, text)
        ids.add(found.group(1))
    assert len(ids) == 1, "every card names the same error"

    [failed] = await events(rig, "grant.failed")
    assert failed.detail["error_id"] in ids and LEAK in failed.detail["error"]
    logged = [r.getMessage() for r in caplog.records if failed.detail["error_id"] in
              r.getMessage()]
    assert logged and LEAK in logged[0]


async def test_a_failing_revoke_alerts_the_channel_with_a_short_reason_and_an_error_id(
    failing_revoke: Rig,
) -> None:
    rig = failing_revoke
    await rig.driver.slash(BOB[0], "activate prod-db-admin for 1h")
    await rig.settle()
    await rig.driver.slash(BOB[0], "deactivate prod-db-admin")
    await rig.settle()
    alert = str(rig.slack.posts_to("#sec-alerts")[-1].args)
    assert "failing" in alert, alert
    assert LEAK not in rig.slack.outgoing_text() and "hunter2" not in rig.slack.outgoing_text()
    found = ERROR_ID.search(alert)
    assert found and "the provider could not complete the revoke" in alert
    [failing] = await events(rig, "revoke.failing")
    assert failing.detail["error_id"] == found.group(1) and LEAK in failing.detail["error"]
