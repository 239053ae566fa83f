"""The TOTP key does not stay in the DM: pimbot deletes the enrolment message and its QR code
(``chat.delete``, ``files.delete``) once the person confirms, or 15 minutes after it was sent,
durably (a job that survives a restart and retries), and says so in the DM. Signed requests
to ``/slack/events`` against the fake Slack Web API, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pyotp
import pytest
from fake_slack import BOB, FakeSlack
from slack_driver import dm_of
from slack_rig import KEY, Rig, running
from sqlalchemy import select

from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, JobRow, MessageRow
from pimbot.workflow.mfa.enrolment_message import DELETED_TITLE

POLICY = """
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    provider: demo
    require_mfa: true
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""
DM = dm_of(BOB[0])


@pytest.fixture
async def rig(db: Database, fake_slack: FakeSlack) -> AsyncIterator[Rig]:
    async with running(db, fake_slack, POLICY) as value:
        yield value


async def enrol(rig: Rig) -> tuple[str, bytes]:
    """``/pim mfa enroll`` in the DM: the key, and the QR code's bytes, as Slack holds them."""
    await rig.driver.slash(BOB[0], "mfa enroll")
    await rig.settle()
    found = KEY.search(rig.enrolment_post(BOB[0]))
    assert found
    (upload,) = [u for u in rig.slack.files_in(DM) if not u.deleted]
    assert found.group(1) in rig.slack.history(DM) and upload.data.hex() in rig.slack.history(DM)
    return found.group(1), upload.data


async def test_the_key_is_never_in_a_notification_preview(rig: Rig) -> None:
    """Slack shows a message's top-level ``text`` in push and desktop notifications, which
    ``chat.delete`` cannot take back: the key may only be in the blocks."""
    secret, _ = await enrol(rig)
    posts = [c for c in rig.slack.calls_to("chat.postMessage") if secret in str(c.args)]
    assert posts, "the enrolment message was posted"
    assert all(secret not in str(c.args.get("text", "")) for c in posts), posts[0].args["text"]


def notes(rig: Rig) -> list[str]:
    return [str(p.args) for p in rig.slack.posts_to(BOB[0]) if DELETED_TITLE in str(p.args)]


async def deletions(rig: Rig) -> list[AuditEventRow]:
    async with rig.db.read() as session:
        return list((await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "mfa.enrolment_message_deleted"))).scalars())


async def test_confirming_deletes_the_message_and_the_qr_code_and_says_so(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, png = await enrol(rig)
    post = rig.slack.posts_to(BOB[0])[-1].answer
    code = rig.code(pyotp.TOTP(secret))
    await rig.driver.slash(BOB[0], f"mfa confirm {code}")
    await rig.settle()

    history = rig.slack.history(DM)
    assert secret not in history and png.hex() not in history, "nothing left to copy"
    assert [c.args["ts"] for c in rig.slack.calls_to("chat.delete")] == [post["ts"]]
    assert [c.args["channel"] for c in rig.slack.calls_to("chat.delete")] == [DM]
    assert len(rig.slack.calls_to("files.delete")) == 1
    assert len(notes(rig)) == 1 and "You confirmed" in notes(rig)[0]
    assert [e.detail["confirmed"] for e in await deletions(rig)] == [True]

    async with rig.db.read() as session:
        stored = [str((j.payload, j.last_error)) for j in (await session.execute(
            select(JobRow))).scalars()]
        stored += [str(m.ref) for m in (await session.execute(select(MessageRow))).scalars()]
    assert not any(secret in text for text in stored), "no job or message row holds the key"
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert secret not in logged and code not in logged


async def test_an_unconfirmed_enrolment_is_deleted_after_15_minutes_across_a_restart(
    db: Database, fake_slack: FakeSlack
) -> None:
    async with running(db, fake_slack, POLICY) as first:
        secret, _ = await enrol(first)
        first.clock.advance(timedelta(minutes=14))
        await first.settle()
        assert secret in fake_slack.history(DM), "kept while the person may still scan it"
    # pimbot restarts (a new process: new core, new clock at the same start, same database)
    async with running(db, fake_slack, POLICY) as second:
        second.clock.advance(timedelta(minutes=15, seconds=1))
        await second.settle()
        assert secret not in fake_slack.history(DM)
        assert [u.deleted for u in fake_slack.files_in(DM)] == [True]
        assert len(notes(second)) == 1 and "mfa enroll" in notes(second)[0]
        assert [e.detail["confirmed"] for e in await deletions(second)] == [False]


async def test_a_failed_delete_is_retried_and_what_is_already_gone_counts(rig: Rig) -> None:
    secret, png = await enrol(rig)
    rig.slack.fail("chat.delete", "internal_error")
    await rig.driver.slash(BOB[0], f"mfa confirm {rig.code(pyotp.TOTP(secret))}")
    await rig.settle()
    assert secret in rig.slack.history(DM), "Slack failed the delete"
    assert notes(rig) == [], "nothing is announced before it is done"

    rig.clock.advance(timedelta(seconds=5))  # the job's backoff
    await rig.settle()
    assert secret not in rig.slack.history(DM) and png.hex() not in rig.slack.history(DM)
    deletes = [c.answer.get("error") for c in rig.slack.calls_to("files.delete")]
    assert deletes == [None, "file_not_found"], "the retry found the file already gone: done"
    assert len(notes(rig)) == 1


async def test_a_message_the_person_deleted_themselves_counts_as_deleted(rig: Rig) -> None:
    secret, _ = await enrol(rig)
    rig.slack.messages.clear()  # Bob deleted the message in Slack himself
    await rig.driver.slash(BOB[0], f"mfa confirm {rig.code(pyotp.TOTP(secret))}")
    await rig.settle()
    assert [c.answer["error"] for c in rig.slack.calls_to("chat.delete")] == ["message_not_found"]
    assert len(await deletions(rig)) == 1 and len(notes(rig)) == 1


async def test_enrolling_again_deletes_the_earlier_message_at_once(rig: Rig) -> None:
    first, _ = await enrol(rig)
    second, _ = await enrol(rig)
    history = rig.slack.history(DM)
    assert first not in history and second in history
    assert [u.deleted for u in rig.slack.files_in(DM)] == [True, False]
