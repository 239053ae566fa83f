"""What a scenario may do with pimbot on any chat platform: the ``Driver`` protocol.

A scenario speaks as people (emails), presses buttons by their label on the latest card
shown to a person, fills in the form last opened for a person, reads the cards each person
has seen (as they look now, after updates), and moves time. Each platform's driver does this
through that platform's own inbound path (console lines, signed Slack requests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from pimbot.testing.fakes import FakeClock, RecordingProvider

BOB = "bob@example.com"  # a requester
ALICE = "alice@example.com"  # an approver, also eligible herself
CAROL = "carol@example.com"  # an approver
LEAD = "sec-lead@example.com"  # the admin
PEOPLE = (BOB, ALICE, CAROL, LEAD)

POLICY = """
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: demo
    max_duration: 4h
    default_duration: 1h
    require_justification: true
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h}
    notify: ["#sec-alerts"]
    expiry_reminder: 10m
  vault-root:
    description: Root token on the vault
    provider: demo
    max_duration: 2h
    default_duration: 1h
    require_mfa: true
    require_justification: true
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h,
               require_mfa: true}
  office-hours:
    description: Approved at once during office hours
    provider: demo
    max_duration: 2h
    require_justification: false
    approval: {required: true, approvers: [group:dba-leads]}
    auto_approve: {windows: ["Mon-Fri 08:00-18:00 UTC"]}
    notify: ["#sec-alerts"]
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
  - {user: bob@example.com, role: office-hours, type: eligible}
  - {user: bob@example.com, role: vault-root, type: eligible}
  - {user: alice@example.com, role: prod-db-admin, type: eligible}
"""

REQUEST_ID = re.compile(r"Request ([a-z0-9]+)")
KEY = re.compile(r"Key: ([A-Z2-7]{16,})")


@dataclass(frozen=True)
class SeenCard:
    """A card as a person sees it now: its title, all its text, its buttons' labels."""

    title: str
    text: str
    buttons: tuple[str, ...] = ()

    @property
    def request_id(self) -> str:
        found = REQUEST_ID.search(self.text)
        assert found, f"no request id on the card {self.title!r}: {self.text!r}"
        return found.group(1)


class Driver(Protocol):
    """One chat platform, driven as its people would drive it."""

    name: str
    provider: RecordingProvider
    clock: FakeClock

    async def say(self, who: str, text: str) -> str:
        """A chat message in the grammar (no ``pim`` prefix); what pimbot answered."""
        ...

    async def click(self, who: str, label: str) -> str:
        """Press the button ``label`` on the latest card shown to ``who``, going ahead when it
        asks first (as the person would, answering its question); the answer."""
        ...

    async def asks_first(self, who: str, label: str) -> str:
        """What the button ``label`` on ``who``'s latest card asks before it acts ("" when
        it acts at once), as the person sees it on pressing it, without going ahead."""
        ...

    async def submit(self, who: str, values: dict[str, str]) -> str:
        """Fill in the form last opened for ``who`` (given values over its initial ones)."""
        ...

    def cards_for(self, who: str) -> list[SeenCard]:
        """Every card shown to ``who`` (sent to them or answered to them), oldest first."""
        ...

    async def advance(self, delta: timedelta) -> None:
        """Move the clock and let every job that became due run."""
        ...


def latest(driver: Driver, who: str) -> SeenCard:
    cards = driver.cards_for(who)
    assert cards, f"no card was shown to {who}"
    return cards[-1]
