"""Approval rules in the workflow: ask the on-call source, count recent activations, and
escalate requests nobody answered. The decisions themselves are pure
(``pimbot.domain.approval_rules``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.approval_rules import ApprovalPlan, OnCallAnswer, plan_approval
from pimbot.domain.model import Role
from pimbot.domain.states import RequestKind, RequestState
from pimbot.store.tables import RequestRow
from pimbot.ui.views import View
from pimbot.workflow.audit import record
from pimbot.workflow.context import Context
from pimbot.workflow.notices.outbox import (
    JobKind,
    notify_channels,
    notify_user,
    refresh_cards,
    schedule,
)
from pimbot.workflow.records import get_request

COUNTED = frozenset({RequestState.APPROVED, RequestState.ACTIVE, RequestState.EXPIRED,
                     RequestState.DEACTIVATED, RequestState.REVOKED})


def plan_needs_lookup(role: Role) -> bool:
    """Whether ``approval_plan`` asks anything for this role (a count of recent
    activations, an on-call source); when not, its plan is ``plan_approval`` with
    ``recent=0`` and no on-call answer."""
    rule = role.auto_approve
    return role.max_activations is not None or (
        rule is not None and rule.on_call is not None and role.approval.required)


async def approval_plan(ctx: Context, email: str, role: Role, duration: timedelta,
                        now: datetime) -> ApprovalPlan:
    recent = 0
    if role.max_activations is not None:
        async with ctx.db.read() as session:
            recent = await _recent_activations(session, email, role.name,
                                               now - role.max_activations.per)
    answer = None
    rule = role.auto_approve
    if rule is not None and rule.on_call is not None and role.approval.required:
        kind, _, schedule_id = rule.on_call.partition(":")
        source = ctx.oncall.get(kind)
        answer = OnCallAnswer(rule.on_call, error=f"{kind} is not set up") if source is None \
            else await source.lookup(schedule_id, email, now)
    return plan_approval(role, now=now, duration=duration, recent=recent, on_call=answer)


async def _recent_activations(session: AsyncSession, email: str, role: str,
                              since: datetime) -> int:
    return int(await session.scalar(select(func.count()).select_from(RequestRow).where(
        RequestRow.email == email, RequestRow.role == role,
        RequestRow.kind == RequestKind.ACTIVATION.value, RequestRow.requested_at >= since,
        RequestRow.state.in_([s.value for s in COUNTED]))) or 0)


async def record_automatic(ctx: Context, session: AsyncSession, row: RequestRow,
                           plan: ApprovalPlan, now: datetime) -> None:
    """An automatic approval: audited with its rule and evidence, posted like a human one."""
    await record(ctx, session, f"rule:{plan.rule}", "request.auto_approved", row.role,
                 request=row.id, user=row.email, rule=plan.rule, reason=plan.reason,
                 evidence=plan.evidence)
    role = ctx.policy.roles[row.role]
    await notify_channels(session, now, role.notify, View.NOTICE, row.id, "auto_approved")


async def schedule_escalations(ctx: Context, session: AsyncSession, row: RequestRow) -> None:
    role = ctx.policy.roles[row.role]
    for level, step in enumerate(role.escalate, start=1):
        await schedule(session, JobKind.ESCALATE, row.requested_at + step.after,
                       dedupe_key=f"escalate:{row.id}:{level}", request_id=row.id, level=level)


async def escalate(ctx: Context, request_id: str, level: int) -> None:
    """Still unanswered: the next approvers are asked; every earlier card says so."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        row = await get_request(session, request_id)
        role = ctx.policy.roles.get(row.role)
        if row.state != RequestState.PENDING_APPROVAL.value or role is None \
                or row.escalation >= level or level > len(role.escalate):
            return
        before = set(ctx.policy.approvers_of(role, row.escalation))
        row.escalation = level
        await session.flush()  # a compare-and-set with any vote in flight
        added = [a for a in ctx.policy.approvers_of(role, level)
                 if a not in before and a != row.email]
        await record(ctx, session, "pimbot", "request.escalated", row.role, request=row.id,
                     user=row.email, level=level, to=list(role.escalate[level - 1].to),
                     approvers=added)
        for approver in added:
            await notify_user(session, now, approver, View.APPROVAL, row.id)
        await refresh_cards(session, now, row.id)
