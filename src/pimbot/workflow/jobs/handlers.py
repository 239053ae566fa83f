"""Durable job handlers by kind: timeouts and reminders here, grants in
``lifecycle/grants.py``, notifications in ``notices/handlers.py``. Every handler is
idempotent: a job run twice (a lease lost, a retry) changes nothing twice, because each state
change is a compare-and-set."""

from __future__ import annotations

import logging

from pimbot.domain.lifecycle import Cause
from pimbot.domain.states import RequestState
from pimbot.scheduling.queue import ClaimedJob
from pimbot.scheduling.retry import PermanentJobError
from pimbot.ui.views import View
from pimbot.workflow.context import Context
from pimbot.workflow.lifecycle.grants import expire, grant, revoke
from pimbot.workflow.lifecycle.transition import move
from pimbot.workflow.notices.outbox import JobKind, notify_approvers, notify_user
from pimbot.workflow.records import get_request, votes_of

log = logging.getLogger(__name__)


async def approval_timeout(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.PENDING_APPROVAL.value:
            return
        if row.approval_due_at is not None and row.approval_due_at > now:
            return
        await move(ctx, session, row, Cause.TIMED_OUT)


async def remind_approvers(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.PENDING_APPROVAL.value:
            return
        voted = frozenset(v.approver for v in await votes_of(session, row.id))
        await notify_approvers(session, now, ctx.policy, row.role, row.email, row.id,
                               View.APPROVER_REMINDER, skip=voted)


async def remind_expiry(ctx: Context, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, job.payload["request_id"])
        if row.state != RequestState.ACTIVE.value or row.expires_at is None:
            return
        if row.expires_at.isoformat() != job.payload.get("expires_at"):
            return  # extended since; the newer reminder will come
        await notify_user(session, now, row.email, View.REMINDER, row.id)


# Kinds claimed together and run by ``dispatch_batch`` (a burst of expiries, or of grants, is
# a few transactions).
BATCH_KINDS = frozenset({JobKind.EXPIRE.value, JobKind.GRANT.value})


async def dispatch_batch(ctx: Context, jobs: list[ClaimedJob]
                         ) -> list[tuple[ClaimedJob, Exception | None]]:
    """Run claimed jobs of ``BATCH_KINDS`` together; each job's outcome (None: done)."""
    from pimbot.workflow.lifecycle.grant_batch import grant_many
    from pimbot.workflow.lifecycle.revocations import expire_many

    expiring = [job for job in jobs if job.kind == JobKind.EXPIRE.value]
    granting = [job for job in jobs if job.kind == JobKind.GRANT.value]
    others = [job for job in jobs if job.kind not in BATCH_KINDS]
    outcomes = await expire_many(ctx, expiring) if expiring else []
    outcomes += await grant_many(ctx, granting) if granting else []
    for job in others:  # pragma: no cover - only expire jobs are claimed as a batch
        try:
            await dispatch(ctx, job)
            outcomes.append((job, None))
        except Exception as exc:
            outcomes.append((job, exc))
    return outcomes


# Kinds a claim hands over together to ``dispatch_group``: a claim's notices and redraws read
# what they draw with one query each, send at once and store their copies in one transaction.
GROUP_KINDS = frozenset({JobKind.NOTIFY.value, JobKind.REFRESH_CARDS.value})


async def dispatch_group(ctx: Context, jobs: list[ClaimedJob]
                         ) -> list[tuple[ClaimedJob, Exception | None]]:
    """Run claimed jobs of ``GROUP_KINDS`` together; each job's outcome (None: done)."""
    from pimbot.workflow.notices import handlers as notify

    return await notify.run(ctx, jobs)


async def dispatch(ctx: Context, job: ClaimedJob) -> None:
    """Run a claimed job by kind (notifications live in workflow.notify)."""
    from pimbot.workflow.jobs.drift import check_drift
    from pimbot.workflow.mfa.enrolment_message import delete_message
    from pimbot.workflow.notices import handlers as notify
    from pimbot.workflow.usecases import approval_rules, grant_end, review_campaigns
    from pimbot.workflow.usecases.assignment import reconcile

    try:
        kind = JobKind(job.kind)
    except ValueError:  # written by a newer pimbot during a rolling upgrade, say
        raise PermanentJobError(f"unknown job kind {job.kind}") from None
    match kind:
        case JobKind.GRANT:
            await grant(ctx, job)
        case JobKind.EXPIRE:
            await expire(ctx, job)
        case JobKind.REVOKE:
            await revoke(ctx, job)
        case JobKind.APPROVAL_TIMEOUT:
            await approval_timeout(ctx, job)
        case JobKind.REMIND_APPROVERS:
            await remind_approvers(ctx, job)
        case JobKind.REMIND_EXPIRY:
            await remind_expiry(ctx, job)
        case JobKind.NOTIFY:
            await notify.deliver(ctx, job)
        case JobKind.REFRESH_CARDS:
            await notify.refresh(ctx, job)
        case JobKind.RECONCILE:
            await reconcile(ctx)
        case JobKind.DRIFT_CHECK:
            await check_drift(ctx, job.payload.get("provider"))
        case JobKind.REVIEW_START:
            await review_campaigns.start_scheduled(ctx, job.payload["name"])
        case JobKind.REVIEW_REMIND:
            await review_campaigns.remind(ctx, job.payload["campaign_id"])
        case JobKind.REVIEW_CLOSE:
            await review_campaigns.close(ctx, job.payload["campaign_id"])
        case JobKind.ESCALATE:
            await approval_rules.escalate(ctx, job.payload["request_id"],
                                          int(job.payload["level"]))
        case JobKind.DELETE_MESSAGE:
            await delete_message(ctx, job)
        case JobKind.EXTEND_GRANT:
            await grant_end.push_grant_end(ctx, job)
        case _:  # pragma: no cover - JobKind() already refused unknown kinds
            raise PermanentJobError(f"unknown job kind {job.kind}")
