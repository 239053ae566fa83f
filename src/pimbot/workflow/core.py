"""PimCore: the one facade adapters call. Text and clicks in, Replies out; jobs in the back."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from pimbot.commands import VERBS, parse
from pimbot.commands.model import Command
from pimbot.domain.admission import Caller
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.ids import new_id
from pimbot.domain.model import Policy
from pimbot.logcontext import bound, current
from pimbot.oncall import OnCallSource
from pimbot.ports import ChatGateway, Clock, NullTelemetry, PlatformIdentity, Provider, Telemetry
from pimbot.scheduling.queue import ClaimedJob, JobQueue
from pimbot.scheduling.replicas import Replicas
from pimbot.scheduling.worker import Worker
from pimbot.store.database import Database
from pimbot.store.deliveries import DeliveryLedger
from pimbot.store.tables import PersonRow, PlatformIdentityRow
from pimbot.ui.cards import ActionId, Card, Reply
from pimbot.workflow import inbound
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record_alone
from pimbot.workflow.context import Context
from pimbot.workflow.dispatch import run_action, run_command
from pimbot.workflow.jobs.drift import schedule_next as schedule_drift_check
from pimbot.workflow.jobs.handlers import (
    BATCH_KINDS,
    GROUP_KINDS,
    dispatch,
    dispatch_batch,
    dispatch_group,
)
from pimbot.workflow.lifecycle.grants import sweep_orphans
from pimbot.workflow.lifecycle.leases import release_owner
from pimbot.workflow.mfa.service import MfaService
from pimbot.workflow.mfa.service import turn_scope as mfa_turn_scope
from pimbot.workflow.people import NamedByDisplayName
from pimbot.workflow.turns import turn_scope
from pimbot.workflow.usecases import deciders, queries
from pimbot.workflow.usecases.assignment import reconcile
from pimbot.workflow.usecases.meant_hints import as_meant, with_own_role
from pimbot.workflow.usecases.request_hints import with_real_request_id
from pimbot.workflow.usecases.review_campaigns import schedule_next_starts

log = logging.getLogger(__name__)

JOB_CONCURRENCY = 16  # jobs run at once besides the expiry batches (notices, grants, …)
RETRIES = 4  # compare-and-set conflicts (two clicks at once) are retried against fresh state


class PimCore:
    def __init__(self, db: Database, policy: Policy, providers: Mapping[str, Provider],
                 clock: Clock, *, mfa: MfaService | None = None, owner: str | None = None,
                 max_sleep: float = 1.0, telemetry: Telemetry | None = None,
                 oncall: Mapping[str, OnCallSource] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.telemetry: Telemetry = telemetry or NullTelemetry()  # adapters report here too
        self.owner = owner or f"{socket.gethostname()[:60]}:{os.getpid()}:{new_id()}"
        self.ctx = Context(db=db, clock=clock, policy=policy, providers=providers, mfa=mfa,
                           owner=self.owner, oncall=dict(oncall or {}))
        self.queue = JobQueue(db, clock, self.owner)
        self.replicas = Replicas(db, self.owner)
        self.replicas.on_release(self._released)
        self.worker = Worker(self.queue, self._run_job, max_sleep=max_sleep,
                             concurrency=JOB_CONCURRENCY, batch_handler=self._run_batch,
                             batch_kinds=BATCH_KINDS, live=self.replicas.live,
                             group_handler=self._run_group, group_kinds=GROUP_KINDS)
        self.worker.attach(db)
        self.deliveries = DeliveryLedger(db)
        self._task: asyncio.Task[None] | None = None

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    def add_gateway(self, gateway: ChatGateway) -> None:
        self.ctx.gateways.append(gateway)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Take over what dead replicas held, reconcile assignments, run everything overdue
        now, then keep the worker running."""
        await self.replicas.join()  # a predecessor killed on this host: its leases go now
        await self.worker.run_due()  # overdue expiries first: revoke what outlived its time
        await reconcile(self.ctx)
        await schedule_drift_check(self.ctx, self.clock.now())
        await schedule_next_starts(self.ctx)
        await self.worker.run_due()
        self._task = asyncio.create_task(self.worker.run(), name="pimbot-worker")

    async def stop(self) -> None:
        """Stop claiming, let the jobs in flight finish, then release every lease this
        process still holds (the other replicas need not wait for them to run out)."""
        if self._task is not None:
            await self.worker.stop()
            await self._task
            self._task = None
            await self.replicas.leave()

    async def drain(self, rounds: int = 50) -> None:
        """Run every job due now, including the ones those jobs enqueue, and wait for the
        jobs the background loop is running (so their notices land before the next turn)."""
        for _ in range(rounds):
            ran = await self.worker.run_due()
            waited = await self.worker.wait_idle()
            if ran == 0 and not waited:
                return

    def is_ready(self) -> bool:
        """The scheduler loop is running and has looked at the queue lately."""
        return self._task is not None and not self._task.done() and self.worker.alive()

    async def _released(self, session: AsyncSession, owner: str) -> int:
        """A replica's grant leases go (it died, or this one stops); a grant call it left
        cut short, for a request that has ended since, is revoked."""
        released = await release_owner(session, owner)
        await sweep_orphans(self.ctx, session)
        # its unfinished inbound requests: Slack's retry of one is acted on, not ignored
        released += await DeliveryLedger.release(session, owner)
        return released

    async def _run_job(self, job: ClaimedJob) -> None:
        await dispatch(self.ctx, job)

    async def _run_batch(self, jobs: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception | None]]:
        return await dispatch_batch(self.ctx, jobs)

    async def _run_group(self, jobs: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception | None]]:
        return await dispatch_group(self.ctx, jobs)

    # -- people --------------------------------------------------------------------------

    async def remember_identity(self, platform: str, user_id: str, email: str,
                                display_name: str = "",
                                conversation_ref: dict[str, Any] | None = None, *,
                                ref_if_unset: dict[str, Any] | None = None,
                                standing: str | None = None) -> None:
        """Store a platform account; ``conversation_ref`` replaces the stored reference,
        ``ref_if_unset`` is stored only while there is none (decided in the transaction);
        ``standing``, where the platform just said the person stands, replaces the stored
        one (None keeps it)."""
        email = email.strip().lower()
        for attempt in range(RETRIES):
            try:
                await self._remember(platform, user_id, email, display_name,
                                     conversation_ref, ref_if_unset, standing)
                return
            except (IntegrityError, StaleDataError):
                # Two events about the same person at once (a conversationUpdate and an
                # installationUpdate, say) both inserted: the second now finds the row.
                if attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))

    async def _remember(self, platform: str, user_id: str, email: str, display_name: str,
                        conversation_ref: dict[str, Any] | None,
                        ref_if_unset: dict[str, Any] | None, standing: str | None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.get(PlatformIdentityRow, (platform, user_id))
            if row is None:
                session.add(PlatformIdentityRow(
                    platform=platform, user_id=user_id, email=email, display_name=display_name,
                    conversation_ref=conversation_ref or ref_if_unset, updated_at=now,
                    standing=standing))
            else:
                row.email, row.updated_at = email, now
                row.display_name = display_name or row.display_name
                row.conversation_ref = conversation_ref or row.conversation_ref or ref_if_unset
                row.standing = standing or row.standing
            if await session.get(PersonRow, email) is None:
                session.add(PersonRow(email=email, display_name=display_name, created_at=now))

    async def identity(self, platform: str, user_id: str) -> PlatformIdentity | None:
        """What ``remember_identity`` stored for this platform account, if anything."""
        async with self.db.read() as session:
            row = await session.get(PlatformIdentityRow, (platform, user_id))
            return None if row is None else _identity(row)

    async def identity_by_email(self, platform: str, email: str) -> PlatformIdentity | None:
        """The person's most recently seen account on ``platform`` (one with a conversation
        reference first, for platforms that message people through one)."""
        async with self.db.read() as session:
            rows = list((await session.execute(select(PlatformIdentityRow).where(
                PlatformIdentityRow.platform == platform,
                PlatformIdentityRow.email == email.strip().lower()))).scalars())
        rows.sort(key=lambda r: (r.conversation_ref is not None, r.updated_at), reverse=True)
        return _identity(rows[0]) if rows else None

    async def forget_reference(self, platform: str, user_id: str,
                               conversation_id: str = "") -> bool:
        """The platform says pimbot can no longer message this account (the app was
        uninstalled): its conversation reference goes, so the person is unreachable there
        until they install it again. With ``conversation_id``, only a reference to that
        conversation is forgotten (a newer one stays). True if one was forgotten."""
        async with self.db.transaction() as session:
            row = await session.get(PlatformIdentityRow, (platform, user_id))
            if row is None or not row.conversation_ref:
                return False
            stored = str((row.conversation_ref.get("conversation") or {}).get("id") or "")
            if conversation_id and stored and stored != conversation_id:
                return False
            row.conversation_ref, row.updated_at = None, self.clock.now()
            return True

    async def home(self, actor: Actor) -> list[Card]:
        return await queries.home(self.ctx, actor)

    # -- who may decide (for platforms that show each reader their own card) ---------------

    async def deciders(self, request_id: str) -> tuple[str, ...]:
        """The emails of everyone who may approve or deny the request now."""
        return await deciders.who_may_decide(self.ctx, request_id)

    async def card_for(self, actor: Actor, request_id: str, view: str) -> Card:
        """An approval card as ``actor`` should see it: with Approve / Deny only if they may
        decide it now, else its status."""
        return await deciders.card_for(self.ctx, actor.email, request_id, view)

    # -- the edge: before a request becomes a turn (see workflow/inbound.py) ---------------

    async def first_delivery(self, platform: str, key: str, kind: str, user_id: str = "",
                             *, retryable: bool = True, **detail: Any) -> bool:
        """False for a replay of a request already taken (acked, audited, not acted on);
        True for a first delivery, or a retry of one a dead replica never finished."""
        return await inbound.first_delivery(self.ctx, self.deliveries, platform, key, kind,
                                            user_id, retryable=retryable, **detail)

    async def delivery_done(self, platform: str, key: str) -> None:
        """The work of a delivery taken by ``first_delivery`` is done (a retry is a replay)."""
        await inbound.finished(self.ctx, self.deliveries, platform, key)

    async def admit(self, caller: Caller, what: str) -> Reply | None:
        """None if the caller may go on, else the (audited) refusal to answer with."""
        return await inbound.admit(self.ctx, caller, what)

    # -- turns -----------------------------------------------------------------------------

    async def handle_text(self, actor: Actor, text: str) -> Reply:
        command: Command | None = None

        async def turn() -> Reply:
            nonlocal command
            try:
                command = parse(text)
            except PimError as error:  # its hint names the person's own request, if any,
                error = as_meant(self.ctx.policy, error)  # and what they meant of their role
                error = await with_own_role(self.ctx, actor, error)
                raise await with_real_request_id(self.ctx, actor, error, text) from None
            return await run_command(self.ctx, actor, command)

        return await self._guarded(actor, turn, lambda: getattr(command, "name", "unknown"))

    async def handle_action(self, actor: Actor, action: ActionId, value: str,
                            inputs: Mapping[str, str] | None = None) -> Reply:
        async def turn() -> Reply:
            return await run_action(self.ctx, actor, ActionId(action), value, dict(inputs or {}))

        return await self._guarded(actor, turn, lambda: str(action), form=inputs is not None)

    async def _guarded(self, actor: Actor, turn: Callable[[], Awaitable[Reply]],
                       what: Callable[[], str], form: bool = False) -> Reply:
        """Run a turn: retry races, word refusals in one line, never leak a stack trace."""
        with bound(user=actor.email, request_id=current("request_id") or new_id("t")):
            return await self._turn(actor, turn, what, form)

    async def _turn(self, actor: Actor, turn: Callable[[], Awaitable[Reply]],
                    what: Callable[[], str], form: bool) -> Reply:
        # A retried attempt keeps the code its first attempt spent, and knows what it saw.
        with mfa_turn_scope(), turn_scope():
            return await self._attempts(actor, turn, what, form)

    async def _attempts(self, actor: Actor, turn: Callable[[], Awaitable[Reply]],
                        what: Callable[[], str], form: bool) -> Reply:
        for attempt in range(RETRIES):
            try:
                return await turn()
            except PimError as error:
                await self._audit_rejection(actor, what(), error)
                return error_reply(error, form)
            except (StaleDataError, IntegrityError):
                if attempt == RETRIES - 1:
                    break
                await asyncio.sleep(0.01 * (attempt + 1))
            except Exception:
                reference = new_id("e")
                log.exception("turn failed (reference %s, command %s)", reference, what())
                return Reply(ok=False, text=f"Something went wrong on pimbot's side (reference "
                                            f"{reference}); nothing was changed. Try again.")
        return Reply(ok=False, text="Someone else changed this at the same moment; "
                                    "nothing was changed. Try again.")

    async def _audit_rejection(self, actor: Actor, what: str, error: PimError) -> None:
        """A bad command by a known person is audited (its code only, never its text)."""
        if error.audit is not None:  # a refusal decided inside a transaction that rolled back
            note = error.audit
            await record_alone(self.ctx, actor.email, note.action, note.subject, "refused",
                               **note.detail)
            return
        if error.code in {ErrorCode.FORBIDDEN, ErrorCode.SELF_APPROVAL,
                          ErrorCode.NOT_APPROVER, ErrorCode.NOT_ELIGIBLE, ErrorCode.MFA}:
            return  # already audited where the decision was made
        if not await self._known(actor.email):
            return
        try:
            await record_alone(self.ctx, actor.email, "command.rejected", what,
                               outcome="invalid", error=error.code.value, platform=actor.platform)
        except Exception:  # the answer to the person matters more than this event
            log.exception("could not audit a rejected command")

    async def _known(self, email: str) -> bool:
        if email in self.policy.people():
            return True
        async with self.db.read() as session:
            return await session.get(PersonRow, email) is not None


def _identity(row: PlatformIdentityRow) -> PlatformIdentity:
    return PlatformIdentity(row.platform, row.user_id, row.email, row.display_name,
                            row.conversation_ref, row.updated_at, row.standing)


def error_reply(error: PimError, form: bool = False) -> Reply:
    """A refusal in one line; a hint that is a command becomes the reply's ``hint`` (each
    adapter writes it with its own prefix), any other hint stays in the text."""
    text, command = error.message, ""
    if error.hint:
        if error.hint.split(" ", 1)[0] in VERBS:
            command = error.hint
        else:
            text = f"{text} — try: {error.hint}"
    fields = {}
    if form:
        field = FORM_FIELDS.get(error.code)
        if field:
            fields[field] = error.message
    card = error.card() if isinstance(error, NamedByDisplayName) else None
    return Reply(ok=False, text=text, card=card, field_errors=fields, hint=command)


FORM_FIELDS = {
    ErrorCode.DURATION: "duration",
    ErrorCode.JUSTIFICATION: "reason",
    ErrorCode.TICKET: "ticket",
    ErrorCode.MFA: "code",
    ErrorCode.UNKNOWN_ROLE: "role",
    ErrorCode.NOT_ELIGIBLE: "role",
    ErrorCode.PARSE: "duration",
}

__all__ = ["Actor", "PimCore", "datetime", "error_reply"]
