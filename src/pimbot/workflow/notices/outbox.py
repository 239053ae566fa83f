"""Follow-up work written in the same transaction as a state change (the outbox).

Nothing is announced that did not commit, and a chat outage becomes a retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.model import Policy
from pimbot.scheduling.queue import NewJob, enqueue, enqueue_again, enqueue_many
from pimbot.ui.views import View


class JobKind(StrEnum):
    GRANT = "grant"
    EXPIRE = "expire"
    REVOKE = "revoke"
    REMIND_EXPIRY = "remind_expiry"
    REMIND_APPROVERS = "remind_approvers"
    APPROVAL_TIMEOUT = "approval_timeout"
    NOTIFY = "notify"
    REFRESH_CARDS = "refresh_cards"
    RECONCILE = "reconcile_assignments"
    DRIFT_CHECK = "drift_check"
    REVIEW_START = "review_start"  # a scheduled campaign of the policy's reviews
    REVIEW_REMIND = "review_remind"
    REVIEW_CLOSE = "review_close"
    ESCALATE = "escalate"  # an unanswered request goes to the next approvers
    DELETE_MESSAGE = "delete_message"  # a sent message that must not stay (an MFA key)
    EXTEND_GRANT = "extend_grant"  # a live grant ends later: PIM targets are told so


# Attempts before a job is given up: a grant fails loudly after ~1 minute of retries; a revoke
# never gives up on its own (each failure alerts the role's channels).
# A message holding a secret is deleted however long the platform takes to let us.
MAX_ATTEMPTS = {JobKind.GRANT: 6, JobKind.REVOKE: 10_000, JobKind.NOTIFY: 12,
                JobKind.DELETE_MESSAGE: 10_000}
# Among due jobs, taking access away comes first, then giving it, then everything else.
PRIORITY = {JobKind.EXPIRE: 0, JobKind.REVOKE: 0, JobKind.GRANT: 1,
            JobKind.DELETE_MESSAGE: 1, JobKind.APPROVAL_TIMEOUT: 2}


def job(kind: JobKind, due_at: datetime, *, dedupe_key: str | None = None,
        **payload: Any) -> NewJob:
    """A job to write with ``schedule_all`` (the arguments of ``schedule``). A redraw is keyed
    by its subject: one queued per subject is enough (``schedule_all``)."""
    if kind is JobKind.REFRESH_CARDS and dedupe_key is None:
        dedupe_key = f"{kind.value}:{payload['request_id']}"
    return NewJob(kind.value, payload, due_at, dedupe_key=dedupe_key,
                  max_attempts=MAX_ATTEMPTS.get(kind, 20), priority=PRIORITY.get(kind, 5))


async def schedule(
    session: AsyncSession, kind: JobKind, due_at: datetime, *, dedupe_key: str | None = None,
    **payload: Any,
) -> None:
    if kind is JobKind.REFRESH_CARDS:
        await schedule_all(session, [job(kind, due_at, dedupe_key=dedupe_key, **payload)])
        return
    await enqueue(session, kind.value, payload, due_at, dedupe_key=dedupe_key,
                  max_attempts=MAX_ATTEMPTS.get(kind, 20), priority=PRIORITY.get(kind, 5))


async def schedule_all(session: AsyncSession, jobs: Sequence[NewJob]) -> None:
    """Several jobs in one statement (what a change tells approvers and channels). A redraw
    of a subject whose redraw is queued already is not queued twice; when that one is running
    now (it may have read the subject before this change), it runs once more after
    (``enqueue_again``)."""
    def keyed_redraw(new: NewJob) -> bool:
        return new.kind == JobKind.REFRESH_CARDS.value and new.dedupe_key is not None

    if any(keyed_redraw(j) for j in jobs):
        await enqueue_again(session, [j for j in jobs if keyed_redraw(j)])
        jobs = [j for j in jobs if not keyed_redraw(j)]
    await enqueue_many(session, jobs)


def user_notice(now: datetime, email: str, view: View, request_id: str,
                event: str = "") -> NewJob:
    return job(JobKind.NOTIFY, now, audience=f"user:{email}", view=view.value,
               request_id=request_id, event=event)


def channel_notices(now: datetime, channels: tuple[str, ...], view: View, request_id: str,
                    event: str = "") -> list[NewJob]:
    return [job(JobKind.NOTIFY, now, audience=f"channel:{channel}", view=view.value,
                request_id=request_id, event=event) for channel in channels]


def approver_notices(now: datetime, policy: Policy, role_name: str, requester: str,
                     request_id: str, view: View = View.APPROVAL,
                     skip: frozenset[str] = frozenset()) -> list[NewJob]:
    role = policy.roles[role_name]
    return [user_notice(now, approver, view, request_id)
            for approver in policy.approvers_of(role)
            if approver != requester and approver not in skip]


async def notify_user(
    session: AsyncSession, now: datetime, email: str, view: View, request_id: str,
    event: str = "",
) -> None:
    await schedule(session, JobKind.NOTIFY, now, audience=f"user:{email}", view=view.value,
                   request_id=request_id, event=event)


async def notify_channels(
    session: AsyncSession, now: datetime, channels: tuple[str, ...], view: View,
    request_id: str, event: str = "",
) -> None:
    await schedule_all(session, channel_notices(now, channels, view, request_id, event))


async def notify_approvers(
    session: AsyncSession, now: datetime, policy: Policy, role_name: str, requester: str,
    request_id: str, view: View = View.APPROVAL, skip: frozenset[str] = frozenset(),
) -> None:
    await schedule_all(session, approver_notices(now, policy, role_name, requester,
                                                 request_id, view, skip))


async def refresh_cards(session: AsyncSession, now: datetime, request_id: str) -> None:
    await schedule(session, JobKind.REFRESH_CARDS, now, request_id=request_id)


class PendingJobs:
    """The outbox of a batch of changes: the jobs ``job`` / ``user_notice`` /
    ``channel_notices`` make, gathered and written by ``write`` with ``schedule_all``."""

    def __init__(self) -> None:
        self.jobs: list[NewJob] = []

    def schedule(self, kind: JobKind, due_at: datetime, *, dedupe_key: str | None = None,
                 **payload: Any) -> None:
        self.jobs.append(job(kind, due_at, dedupe_key=dedupe_key, **payload))

    def notify_user(self, now: datetime, email: str, view: View, request_id: str,
                    event: str = "") -> None:
        self.jobs.append(user_notice(now, email, view, request_id, event))

    def notify_channels(self, now: datetime, channels: tuple[str, ...], view: View,
                        request_id: str, event: str = "") -> None:
        self.jobs += channel_notices(now, channels, view, request_id, event)

    def refresh_cards(self, now: datetime, request_id: str) -> None:
        self.schedule(JobKind.REFRESH_CARDS, now, request_id=request_id)

    async def write(self, session: AsyncSession) -> None:
        jobs, self.jobs = self.jobs, []
        await schedule_all(session, jobs)
