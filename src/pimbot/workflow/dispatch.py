"""Commands and clicks to use cases: one `match` each, no logic of its own."""

from __future__ import annotations

from pimbot.commands import help_text
from pimbot.commands import model as c
from pimbot.commands.model import Command, UserRef, UserRefKind
from pimbot.domain.durations import parse_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.reviews import Decision
from pimbot.ui.cards import ActionId, Reply
from pimbot.workflow.actor import Actor
from pimbot.workflow.context import Context
from pimbot.workflow.mfa import commands as mfa_commands
from pimbot.workflow.people import resolve_user
from pimbot.workflow.permissions import require_admin
from pimbot.workflow.usecases import (
    activation,
    approval,
    assignment,
    ending,
    extension,
    queries,
    review_answers,
    review_campaigns,
    typed_inputs,
)
from pimbot.workflow.usecases.activation import ActivationInput


async def run_command(ctx: Context, actor: Actor, command: Command) -> Reply:
    match command:
        case c.Help(topic=topic):
            return Reply(text=help_text(topic, actor.command_prefix.strip()))
        case c.Roles():
            return await queries.roles(ctx, actor)
        case c.Activate():
            return await activation.activate(ctx, actor, ActivationInput(
                command.role, command.duration, command.reason, command.ticket, command.code,
                command.at))
        case c.Deactivate(role=role):
            return await ending.deactivate(ctx, actor, role)
        case c.Extend(role=role, duration=duration, code=code):
            return await extension.extend(ctx, actor, role, duration, code=code)
        case c.Status():
            return await queries.status(ctx, actor)
        case c.Cancel(request_id=request_id):
            return await ending.cancel(ctx, actor, request_id)
        case c.Pending():
            return await queries.pending(ctx, actor)
        case c.Approve(request_id=request_id, comment=comment, code=code):
            return await approval.approve(ctx, actor, request_id, comment, code)
        case c.Deny(request_id=request_id, reason=reason):
            return await approval.deny(ctx, actor, request_id, reason)
        case c.Whois(role=role):
            return await queries.whois(ctx, actor, role)
        case c.Breakglass():
            return await activation.breakglass(ctx, actor, command.role, command.reason,
                                               command.duration, command.code)
        case c.Assign():
            await require_admin(ctx, actor, "assign")  # before anyone is looked up by name
            email = await resolve_user(
                ctx, actor, command.user,
                f"assign bob@example.com {command.role} {command.type.value}")
            return await assignment.assign(ctx, actor, email, command.role, command.type,
                                           command.duration, command.until)
        case c.Unassign():
            await require_admin(ctx, actor, "unassign")
            email = await resolve_user(ctx, actor, command.user,
                                       f"unassign bob@example.com {command.role}")
            return await assignment.unassign(ctx, actor, email, command.role)
        case c.Audit(subject=subject, since=since):
            return await queries.audit(ctx, actor, await _audit_subject(ctx, actor, subject),
                                       since)
        case c.MfaEnroll(code=code):
            return await mfa_commands.enroll(ctx, actor, code)
        case c.MfaConfirm(code=code):
            return await mfa_commands.confirm(ctx, actor, code)
        case c.MfaStatus():
            return await mfa_commands.status(ctx, actor)
        case c.MfaReset():
            await require_admin(ctx, actor, "mfa reset")
            email = await resolve_user(ctx, actor, command.user, "mfa reset bob@example.com")
            return await mfa_commands.reset(ctx, actor, email, command.code)
        case c.Reviews():
            return await review_answers.reviews(ctx, actor)
        case c.ReviewStart(roles=roles, duration=duration):
            return await review_campaigns.start_ad_hoc(ctx, actor, roles, duration)
        case c.ReviewKeep(item_id=item_id, reason=reason):
            return await review_answers.decide(ctx, actor, item_id, Decision.KEEP, reason)
        case c.ReviewRemove(item_id=item_id, reason=reason):
            return await review_answers.decide(ctx, actor, item_id, Decision.REMOVE, reason)
        case c.ReviewAccept():
            return await review_answers.accept_recommendations(ctx, actor)
    raise PimError(ErrorCode.UNKNOWN_COMMAND, "That command is not handled.", "help")


async def run_action(ctx: Context, actor: Actor, action: ActionId, value: str,
                     inputs: dict[str, str]) -> Reply:
    inputs = typed_inputs.kept_inputs(inputs)
    if (refusal := typed_inputs.code_refusal(inputs)) is not None:
        return refusal
    match action:
        case ActionId.APPROVE:
            return await approval.click_approve(ctx, actor, value)
        case ActionId.DENY:
            return await approval.click_deny(ctx, actor, value)
        case ActionId.SUBMIT_APPROVE:
            return await approval.approve(ctx, actor, value, inputs.get("comment") or None,
                                          inputs.get("code") or None)
        case ActionId.SUBMIT_DENY:
            return await approval.deny(ctx, actor, value, inputs.get("reason", ""))
        case ActionId.CANCEL:
            return await ending.cancel(ctx, actor, value)
        case ActionId.DEACTIVATE:
            return await ending.deactivate(ctx, actor, None, request_id=value)
        case ActionId.EXTEND:
            return await extension.extend(ctx, actor, None, None, request_id=value)
        case ActionId.SUBMIT_EXTEND:
            amount = inputs.get("duration")
            return await extension.extend(ctx, actor, None,
                                          parse_duration(amount) if amount else None,
                                          request_id=value, code=inputs.get("code") or None)
        case ActionId.ACTIVATE:
            return await activation.activate(ctx, actor, ActivationInput(value or None))
        case ActionId.SUBMIT_ACTIVATION:
            duration = inputs.get("duration")
            return await activation.activate(ctx, actor, ActivationInput(
                inputs.get("role") or value or None,
                parse_duration(duration) if duration else None,
                inputs.get("reason") or None, inputs.get("ticket") or None,
                inputs.get("code") or None, inputs.get("at") or None))
        case ActionId.SUBMIT_MFA_CONFIRM:
            return await mfa_commands.confirm(ctx, actor, inputs.get("code", "").strip())
        case ActionId.REVIEW_KEEP:
            return await review_answers.decide(ctx, actor, value, Decision.KEEP, None)
        case ActionId.REVIEW_REMOVE:
            return await review_answers.click_remove(ctx, actor, value)
        case ActionId.SUBMIT_REVIEW_REMOVE:
            return await review_answers.decide(ctx, actor, value, Decision.REMOVE,
                                               inputs.get("reason"))
        case ActionId.REVIEW_ACCEPT:
            return await review_answers.accept_recommendations(ctx, actor)
    raise PimError(ErrorCode.UNKNOWN_COMMAND, f"Unknown button '{action}'.")


async def _audit_subject(ctx: Context, actor: Actor, subject: str | None) -> str | None:
    if subject is None or subject in ctx.policy.roles or "@" in subject:
        return subject.lower() if subject and "@" in subject else subject
    if subject.startswith("<@"):
        ref = UserRef(UserRefKind.MENTION, subject.strip("<@>").split("|")[0])
        return await resolve_user(ctx, actor, ref, "audit bob@example.com")
    return subject
