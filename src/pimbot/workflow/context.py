"""What every use case needs: the database, the clock, the policy, providers and gateways."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.examples import activation_example
from pimbot.domain.model import Policy, Role
from pimbot.ports import ChatGateway, Clock, Provider
from pimbot.store.database import Database

if TYPE_CHECKING:
    from pimbot.oncall import OnCallSource
    from pimbot.workflow.mfa.service import MfaService


@dataclass
class Context:
    db: Database
    clock: Clock
    policy: Policy
    providers: Mapping[str, Provider]
    mfa: MfaService | None = None
    gateways: list[ChatGateway] = field(default_factory=list)
    oncall: Mapping[str, OnCallSource] = field(default_factory=dict)  # pagerduty, opsgenie
    owner: str = ""  # this process's replica id (who holds the leases it takes)
    # provider name -> its calls in flight (``lifecycle/leases.py``, ``max_concurrency``)
    call_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def role(self, name: str | None, example: Callable[[Role], str] | None = None) -> Role:
        """The role called ``name``, or a one-line error with a did-you-mean whose hint is
        ``example`` (the command that was typed, default ``activate``) for the guessed role;
        with no guess, the hint lists the person's roles."""
        from pimbot.commands.suggest import suggest

        if name and name in self.policy.roles:
            return self.policy.roles[name]
        guess = suggest(name or "", self.policy.roles) if name else None
        message = f"There is no role '{name}'." if name else "Which role?"
        if not guess:
            raise PimError(ErrorCode.UNKNOWN_ROLE, message, "roles")
        role = self.policy.roles[guess]
        raise PimError(ErrorCode.UNKNOWN_ROLE, f"{message} Did you mean '{guess}'?",
                       (example or activation_example)(role))

    def provider(self, role: Role) -> Provider:
        try:
            return self.providers[role.provider]
        except KeyError:
            raise PimError(
                ErrorCode.NOT_AVAILABLE, f"provider '{role.provider}' of {role.name} is not set up"
            ) from None
