"""Two runs of the console on one database: what the second shows of the first one's cards.

Each run is the console adapter's own ``ConsoleAdapter`` reading a script (``StdinLines``)
with a fresh ``Screen`` and core, as a new ``pimbot run`` would have; the clock is fake so an
activation can expire while no console is running.
"""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_console.app import ConsoleAdapter, StdinLines
from pimbot_console.gateway import Screen

POLICY = """
admins: [sec-lead@example.com]
providers:
  demo: {type: noop}
roles:
  staging-deploy: {provider: demo, max_duration: 8h, require_justification: false}
  billing-read: {provider: demo, max_duration: 8h, require_justification: false}
assignments:
  - {user: bob@example.com, role: staging-deploy, type: eligible}
  - {user: bob@example.com, role: billing-read, type: eligible}
"""


class Run:
    """One ``pimbot run`` of the console: its own core, gateway and screen."""

    def __init__(self, db: Database, clock: FakeClock) -> None:
        self.output: list[str] = []
        policy = parse_policy(POLICY)
        mfa = MfaService(db, SecretBox(secrets.token_bytes(32)), clock)
        self.core = PimCore(db, policy, {"demo": RecordingProvider()}, clock, mfa=mfa)
        self.console = ConsoleAdapter(self.core, "bob@example.com",
                                      Screen(write=self.output.append))
        self.core.add_gateway(self.console.gateway)

    async def type(self, *lines: str) -> str:
        """Feed lines as a piped script; what the console printed meanwhile."""
        start = len(self.output)
        await self.console.run(StdinLines(io.StringIO("".join(f"{ln}\n" for ln in lines))))
        await self.core.drain()
        return "".join(self.output[start:])

    async def catch_up(self) -> str:
        """What a start prints while the jobs that fell due meanwhile run."""
        start = len(self.output)
        await self.core.drain()
        return "".join(self.output[start:])


async def test_an_expiry_while_no_console_ran_is_one_new_card_not_stale_redraws(
        sqlite_db: Database) -> None:
    clock = FakeClock()
    await apply_policy(sqlite_db, parse_policy(POLICY), clock)
    first = Run(sqlite_db, clock)
    printed = await first.type("activate staging-deploy for 30m")
    assert "Your activation of staging-deploy: active" in printed

    clock.advance(timedelta(minutes=31))  # no console is running
    second = Run(sqlite_db, clock)
    printed = await second.type("activate billing-read for 2h") + await second.catch_up()
    assert printed.count("Your activation of staging-deploy: expired") == 1 + \
        printed.count("(a card from an earlier run)"), printed  # one card, the rest one-liners
    assert "── to bob@example.com" in printed and "earlier session)" not in printed, printed
    earlier = [ln for ln in printed.splitlines() if "(a card from an earlier run)" in ln]
    assert len(earlier) == len(set(earlier)) == 1, printed  # once per audience and content
    assert "[1]" not in earlier[0], "no buttons: click presses only this run's cards"

    # the first run's cards sat at this screen's first places, where billing-read's now are:
    # none of them was redrawn with staging-deploy's news
    assert "↻ updated for bob@example.com: Your activation of staging-deploy" not in printed
    assert "Your activation of billing-read: active" in printed
