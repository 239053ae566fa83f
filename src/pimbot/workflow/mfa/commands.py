"""The `mfa` chat commands: enrol (direct messages only), confirm, status, admin reset."""

from __future__ import annotations

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.ui.cards import Card, Reply, Tone
from pimbot.ui.views import View
from pimbot.workflow.actor import Actor
from pimbot.workflow.context import Context
from pimbot.workflow.mfa import enrolment_message
from pimbot.workflow.mfa.service import MfaService
from pimbot.workflow.notices.outbox import JobKind, schedule
from pimbot.workflow.permissions import require_admin

KEEP_WORDS = (f"once you confirm, or after {enrolment_message.KEEP_FOR.seconds // 60} minutes "
              "if you do not")


def _service(ctx: Context) -> MfaService:
    if ctx.mfa is None:
        raise PimError(ErrorCode.NOT_AVAILABLE, "MFA is not set up on this pimbot.")
    return ctx.mfa


async def enroll(ctx: Context, actor: Actor, current_code: str | None = None) -> Reply:
    if not actor.in_direct_message:
        raise PimError(ErrorCode.FORBIDDEN,
                       "For your safety, MFA enrolment only happens in a direct message with me: "
                       "send it to me there.", "mfa enroll")
    service = _service(ctx)
    if (await service.status(actor.email)).enrolled:
        # Replacing an authenticator needs the current one, so a hijacked chat account
        # cannot swap in its own; someone who lost theirs asks an admin for `mfa reset`.
        if current_code is None:
            raise PimError(ErrorCode.MFA,
                           "You are already enrolled; replacing your authenticator needs a code "
                           "from the current one (lost it? ask an admin for mfa reset).",
                           "mfa enroll code 123456")
        await service.verify(actor.email, current_code, purpose="replace authenticator")
    enrollment = await service.enroll(actor.email)
    prefix = actor.command_prefix
    card = Card(
        title="Set up your authenticator",
        text=("Scan the QR code with your authenticator app (or enter the key by hand), then "
              f"confirm with the first code: {prefix}mfa confirm 123456\n"
              f"Key: {enrollment.secret_base32}\n"
              f"Link: {enrollment.uri}"),
        image_png=enrollment.qr_png, image_alt="QR code for your authenticator app",
        image_text=enrollment.qr_text, secret=True,
        context=(f"pimbot deletes this message {KEEP_WORDS}. Until you confirm, your previous "
                 "authenticator (if any) keeps working."),
        tone=Tone.WARNING,
    )
    await enrolment_message.send(ctx, actor, card)
    return Reply(text=(f"Your new authenticator key and its QR code are in a direct message to "
                       f"you. Confirm with the first code: {prefix}mfa confirm 123456. pimbot "
                       f"deletes that message {KEEP_WORDS}."))


async def confirm(ctx: Context, actor: Actor, code: str) -> Reply:
    await _service(ctx).confirm(actor.email, code)
    await enrolment_message.delete_soon(ctx, actor.email)
    await _tell_admins(ctx, actor)
    return Reply(text="Your authenticator is confirmed. Roles that need MFA will ask for a code. "
                      "The message with your key is being deleted.")


async def _tell_admins(ctx: Context, actor: Actor) -> None:
    """A new authenticator is news to the admins: a hijacked chat account could enrol one."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        for admin in ctx.policy.admins:
            if admin != actor.email:
                await schedule(session, JobKind.NOTIFY, now, audience=f"user:{admin}",
                               view=View.PROBLEM.value, request_id="",
                               title=f"{actor.email} set up a new authenticator for pimbot",
                               text=f"Confirmed from {actor.platform}. If this was not them, "
                                    f"run: mfa reset {actor.email}")


async def status(ctx: Context, actor: Actor) -> Reply:
    state = await _service(ctx).status(actor.email)
    prefix = actor.command_prefix
    if state.hard_locked:
        text = "MFA is locked after too many failed codes; ask an admin to run mfa reset."
    elif state.locked_until is not None:
        text = f"MFA is locked until {state.locked_until:%H:%M} UTC after failed codes."
    elif state.enrolled:
        text = "You are enrolled in MFA."
        if state.pending:
            text += f" A new authenticator is waiting for confirmation ({prefix}mfa confirm …)."
    elif state.pending:
        text = f"Your enrolment is waiting for confirmation: {prefix}mfa confirm 123456"
    else:
        text = f"You are not enrolled in MFA. Start with: {prefix}mfa enroll"
    return Reply(text=text)


async def reset(ctx: Context, actor: Actor, email: str, code: str | None) -> Reply:
    await require_admin(ctx, actor, "mfa reset")
    service = _service(ctx)
    try:
        await service.verify(actor.email, code, purpose=f"mfa reset {email}")
    except PimError as refused:
        mine = await service.status(actor.email)
        if mine.enrolled or mine.pending:
            raise
        # The admin's own code is what vouches for the reset: without an authenticator of
        # their own, the way on is to enrol, not a reset of their own MFA.
        raise PimError(refused.code, "Resetting someone's MFA needs your own authenticator "
                       "code, and you are not enrolled in MFA: enrol first with "
                       f"{actor.command_prefix}mfa enroll, then run "
                       f"{actor.command_prefix}mfa reset {email} code 123456.",
                       "mfa enroll", audit=refused.audit) from None
    await service.reset(actor.email, email)
    await enrolment_message.delete_soon(ctx, email)  # its key is void now
    return Reply(text=f"MFA for {email} was reset; they can enrol again with mfa enroll.")
