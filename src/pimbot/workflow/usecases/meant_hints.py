"""A refused command's hint as the command the person meant, for the role they named.

Two slips are read as what was probably meant, and the hint carries everything else the
person typed (the reason, quoted so it reads back the same; the ticket; the start), so they
need not type it again:

- a duration without a unit (``activate staging-deploy for 30``): the grammar reads the number
  within a day (``commands.UnitlessDuration``); here the role's maximum bounds it (``for 30m``,
  not the catalogue's ``1h``);
- ``code 123456`` inside a reason (``commands.CodeInText``): refused, so the code reaches
  no card and no audit event; the hint is the command without it, with the code clause as the
  placeholder ``code 123456`` only where the role asks for one.

- a value the grammar could not read (``for 1y``, ``at soonish``: ``commands.Misread``): the
  hint is the command without it, the role's own sample in its place.

Either way the hint gives every clause the role needs (``domain.examples.activation_example``).
A command missing its role (``deactivate``: ``commands.RoleMissing``) is hinted with one of the
person's own roles (``with_own_role``), not the catalogue's sample, which may not exist.
A break-glass refused for want of its MFA code is hinted the same way (``with_breakglass_code``).
"""

from __future__ import annotations

from datetime import timedelta

from pimbot.commands import CodeInText, Misread, RoleMissing, UnitlessDuration, writer
from pimbot.commands import model as m
from pimbot.commands.reader import SAMPLE_ROLE
from pimbot.domain.durations import format_duration, probable_duration
from pimbot.domain.errors import PimError
from pimbot.domain.examples import SAMPLE_CODE, activation_example, sample_duration
from pimbot.domain.model import Policy, Role
from pimbot.domain.states import RequestState
from pimbot.workflow.actor import Actor
from pimbot.workflow.context import Context
from pimbot.workflow.records import eligible_roles, open_requests


def as_meant(policy: Policy, error: PimError) -> PimError:
    """``error`` with its hint as the command meant, within the named role (see above)."""
    if not isinstance(error, UnitlessDuration | CodeInText | Misread) \
            or error.role not in policy.roles:
        return error
    role = policy.roles[error.role]
    hint = _hint(role, error)
    if hint is None:
        return error
    return PimError(error.code, error.message, hint, audit=error.audit)


def _hint(role: Role, error: UnitlessDuration | CodeInText | Misread) -> str | None:
    meant = error.meant
    match error.verb:
        case "activate":
            given = meant if isinstance(meant, m.Activate) else m.Activate(role.name)
            return activation_example(
                role, duration=_duration(error, given.duration, role.max_duration),
                at=_written(writer.when, given.at), ticket=_written(writer.word, given.ticket),
                reason=_written(writer.free_text, given.reason))
        case "breakglass":
            limit = min(role.max_duration, role.breakglass.max_duration)
            reason = meant.reason if isinstance(meant, m.Breakglass) else None
            duration = meant.duration if isinstance(meant, m.Breakglass) else None
            return activation_example(role, verb="breakglass",
                                      duration=_duration(error, duration, limit),
                                      reason=_written(writer.free_text, reason))
        case "extend":
            duration = meant.duration if isinstance(meant, m.Extend) else None
            length = _duration(error, duration, role.max_duration) or sample_duration(role)
            return f"extend {role.name} for {length}" + (
                f" code {SAMPLE_CODE}" if role.require_mfa else "")
    return None


def _duration(error: UnitlessDuration | CodeInText | Misread, given: timedelta | None,
              limit: timedelta) -> str | None:
    """The duration to hint: a bare number read within ``limit``; else the one typed, when
    the role allows it; else None (the sample)."""
    if isinstance(error, UnitlessDuration):
        return format_duration(probable_duration(error.amount, limit))
    if given is not None and given <= limit:
        return format_duration(given)
    return None


def _written(write: writer.Writer, value: str | None) -> str | None:
    return write(value) if value else None


async def with_breakglass_code(ctx: Context, email: str, role: Role, error: PimError,
                               code: str | None, duration: timedelta | None,
                               reason: str) -> PimError:
    """A break-glass refused for want of its code is hinted as the same break-glass with the
    code clause, its reason and duration kept; any other MFA refusal (not enrolled, locked, a
    wrong code) keeps its own hint."""
    if code or ctx.mfa is None:
        return error
    status = await ctx.mfa.status(email)
    if not status.enrolled or status.locked_until is not None or status.hard_locked:
        return error
    hint = activation_example(role, verb="breakglass",
                              duration=format_duration(duration) if duration else None,
                              reason=writer.free_text(reason))
    return PimError(error.code, error.message, hint, audit=error.audit)


# Commands that act on the person's active access: their active roles come first.
_ON_ACTIVE = frozenset({"deactivate", "extend"})


async def with_own_role(ctx: Context, actor: Actor, error: PimError) -> PimError:
    """A command missing its role, with one of the person's roles in place of the sample in
    its message and hint (``deactivate`` and ``extend``: one they hold now; else one they are
    eligible for; else the policy's first role), when the sample is not one of them."""
    if not isinstance(error, RoleMissing) or not error.hint:
        return error
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        active = [r.role for r in await open_requests(
            session, email=actor.email, states=frozenset({RequestState.ACTIVE}))] \
            if error.verb in _ON_ACTIVE else []
        eligible = await eligible_roles(session, actor.email, now)
    known = [name for name in active or eligible if name in ctx.policy.roles]
    candidates = known or list(ctx.policy.roles)
    if not candidates or SAMPLE_ROLE in candidates:
        return error
    role = candidates[0]
    return PimError(error.code, error.message.replace(SAMPLE_ROLE, role),
                    error.hint.replace(SAMPLE_ROLE, role), audit=error.audit)
