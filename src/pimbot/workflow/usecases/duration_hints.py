"""A duration typed without a unit (``activate staging-deploy for 30``) is hinted as what the
person probably meant, within the role's maximum: ``for 30m``, not the catalogue's ``1h``.

The grammar reads the number within a day (``commands.UnitlessDuration``); here the role they
named, when the policy has it, bounds it, and the hint gives every clause that role needs
(``domain.examples.activation_example``)."""

from __future__ import annotations

from datetime import timedelta

from pimbot.commands import UnitlessDuration
from pimbot.domain.durations import format_duration, probable_duration
from pimbot.domain.errors import PimError
from pimbot.domain.examples import SAMPLE_CODE, activation_example
from pimbot.domain.model import Policy


def with_probable_duration(policy: Policy, error: PimError) -> PimError:
    """``error`` with its hint's duration within the named role's maximum (see above)."""
    if not isinstance(error, UnitlessDuration) or error.role not in policy.roles:
        return error
    role = policy.roles[error.role]
    match error.verb:
        case "activate":
            hint = activation_example(role, duration=_meant(error, role.max_duration))
        case "breakglass":
            limit = min(role.max_duration, role.breakglass.max_duration)
            hint = activation_example(role, verb="breakglass", duration=_meant(error, limit))
        case "extend":
            hint = f"extend {role.name} for {_meant(error, role.max_duration)}" + (
                f" code {SAMPLE_CODE}" if role.require_mfa else "")
        case _:
            return error
    return PimError(error.code, error.message, hint, audit=error.audit)


def _meant(error: UnitlessDuration, limit: timedelta) -> str:
    return format_duration(probable_duration(error.amount, limit))
