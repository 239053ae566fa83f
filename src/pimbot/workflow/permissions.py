"""Who may act on what: admin-only commands and requests that belong to someone."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.errors import AuditNote, ErrorCode, PimError
from pimbot.domain.model import Policy
from pimbot.store.tables import RequestRow
from pimbot.workflow.actor import Actor
from pimbot.workflow.audit import record_alone
from pimbot.workflow.context import Context
from pimbot.workflow.records import get_request


async def require_admin(ctx: Context, actor: Actor, command: str) -> None:
    if not ctx.policy.is_admin(actor.email):
        await record_alone(ctx, actor.email, f"{command}.refused", "", reason="not_admin")
        raise PimError(ErrorCode.FORBIDDEN, f"Only admins can use '{command}'.", "help")


async def owned(ctx: Context, session: AsyncSession, actor: Actor, request_id: str,
                action: str) -> RequestRow:
    """The request, if it is the actor's own (or the actor is an admin)."""
    row = await get_request(session, request_id, own=True)
    if row.email != actor.email and not ctx.policy.is_admin(actor.email):
        raise PimError(ErrorCode.FORBIDDEN, f"Request {row.id} is not yours.", "status",
                       audit=AuditNote(f"{action}.refused", row.role,
                                       {"request": row.id, "reason": "not_owner"}))
    return row


def outsider(policy: Policy, email: str, row: RequestRow) -> bool:
    """Someone with no part in the request: neither its requester, nor an approver at any of
    its role's escalation steps, nor an admin or auditor (who may read it in the audit log
    anyway). Such a person learns nothing of the request from pimbot: not its state, role,
    requester or reason."""
    role = policy.roles.get(row.role)
    if role is None or email == row.email or policy.is_admin(email) \
            or policy.is_auditor(email):
        return False
    return email not in policy.approvers_of(role, len(role.escalate))
