"""The message that carries a new TOTP key, and its deletion.

An enrolment message (the key, the ``otpauth://`` link, the QR code) is sent to the person's
direct message on the platform they asked from, and remembered in ``messages`` with the view
``mfa_enrolment``. Whoever reads that chat later (someone who takes over the account, say)
could mint codes from it, so it does not stay: a ``delete_message`` job, written with the
message, deletes it (and its file) 15 minutes after it was sent, and is brought forward to
now when the person confirms, enrols again or is reset by an admin. The job survives
restarts and is retried until the platform confirms; it never sees the key (its payload is
the message's row id, and the card is never drawn again). The person is told once it is gone.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.ports import SentMessage, Unreachable
from pimbot.scheduling.queue import ClaimedJob, reschedule
from pimbot.scheduling.retry import RetryLater
from pimbot.store.tables import MessageRow, MfaEnrollmentRow
from pimbot.ui.cards import Card
from pimbot.ui.views import View
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.forms import prefix_for
from pimbot.workflow.notices.delivery import Delivery
from pimbot.workflow.notices.outbox import JobKind, schedule

log = logging.getLogger(__name__)

ENROLMENT_VIEW = "mfa_enrolment"
KEEP_FOR = timedelta(minutes=15)  # an unconfirmed enrolment message is deleted after this
NO_GATEWAY_RETRY = timedelta(minutes=1)  # the platform's adapter runs in another replica
DELETED_TITLE = "pimbot deleted the message with your authenticator key"
DELETED_AFTER_CONFIRM = (
    "You confirmed your authenticator, so the key and its QR code are gone from this "
    "conversation: nobody who reads this chat later can copy them."
)
DELETED_UNCONFIRMED = (
    "The key and its QR code were not left in this conversation, so nobody who reads this "
    "chat later can copy them. If you already added the key to your app, confirm with "
    "{prefix}mfa confirm CODE; otherwise start again with {prefix}mfa enroll."
)


def subject_of(email: str) -> str:
    """The ``messages.subject_id`` of a person's enrolment messages (indexed, 32 chars)."""
    return "mfa-" + hashlib.sha256(email.encode()).hexdigest()[:28]


def delete_key(message_id: int) -> str:
    return f"delete-message:{message_id}"


async def send(ctx: Context, actor: Actor, card: Card) -> None:
    """DM the card on the actor's own platform and write its deletion, due in 15 minutes.

    Earlier enrolment messages of the person (their keys are replaced now) go at once.
    """
    gateway = Delivery(ctx.db, ctx.gateways).gateway_for(actor.platform)
    if gateway is None:
        raise PimError(ErrorCode.NOT_AVAILABLE,
                       f"pimbot cannot send direct messages on {actor.platform} right now.")
    try:
        sent = await gateway.send_to_user(actor.email, card)
    except Unreachable:
        raise PimError(ErrorCode.NOT_AVAILABLE,
                       "pimbot could not reach your direct messages; nothing was sent.") from None
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        await _delete_soon(session, actor.email, now)
        row = MessageRow(subject_id=subject_of(actor.email), view=ENROLMENT_VIEW,
                         audience=f"user:{actor.email}", platform=sent.platform,
                         ref=dict(sent.ref), sent_at=now)
        session.add(row)
        await session.flush()
        await schedule(session, JobKind.DELETE_MESSAGE, now + KEEP_FOR,
                       dedupe_key=delete_key(row.id), message_id=row.id)


async def delete_soon(ctx: Context, email: str) -> None:
    """Bring the deletion of every enrolment message of the person forward to now."""
    async with ctx.db.transaction() as session:
        await _delete_soon(session, email, ctx.clock.now())


async def _delete_soon(session: AsyncSession, email: str, now: datetime) -> None:
    ids = (await session.execute(select(MessageRow.id).where(
        MessageRow.subject_id == subject_of(email), MessageRow.view == ENROLMENT_VIEW))).scalars()
    for message_id in ids:
        await reschedule(session, delete_key(message_id), now)


async def delete_message(ctx: Context, job: ClaimedJob) -> None:
    """The ``delete_message`` job: delete at the platform, then forget the message and say
    so. A failure raises (the job retries with backoff); a message already gone is done."""
    async with ctx.db.read() as session:
        row = await session.get(MessageRow, job.payload["message_id"])
    if row is None:
        return  # deleted by an earlier run
    gateway = Delivery(ctx.db, ctx.gateways).gateway_for(row.platform)
    if gateway is None:
        raise RetryLater(f"no {row.platform} adapter in this process", NO_GATEWAY_RETRY)
    await gateway.delete(SentMessage(row.platform, {k: str(v) for k, v in row.ref.items()}))
    email = row.audience.removeprefix("user:")
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        current = await session.get(MessageRow, row.id)
        if current is None:
            return
        await session.delete(current)
        enrolment = await session.get(MfaEnrollmentRow, email)
        confirmed = bool(enrolment and enrolment.confirmed_at
                         and enrolment.confirmed_at >= row.sent_at)
        await record(ctx, session, "pimbot", "mfa.enrolment_message_deleted", email,
                     platform=row.platform, confirmed=confirmed,
                     kept_s=int((now - row.sent_at).total_seconds()))
        await schedule(session, JobKind.NOTIFY, now, audience=row.audience,
                       view=View.INFO.value, request_id="", platform=row.platform,
                       title=DELETED_TITLE,
                       text=DELETED_AFTER_CONFIRM if confirmed else
                       DELETED_UNCONFIRMED.format(prefix=prefix_for(row.platform)))
    log.info("mfa enrolment message deleted", extra={"email": email, "platform": row.platform})
