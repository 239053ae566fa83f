"""A PimCore on a real database with a fake clock, a recording provider and chat gateway."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp

from pimbot.domain.model import Policy
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock, RecordingChatGateway, RecordingProvider
from pimbot.ui.cards import ActionId, Card, Reply
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from totp_codes import wrong_code

POLICY = """
admins: [sec-lead@example.com]
auditors: [audit@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
providers:
  demo: {type: noop}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: demo
    grant: {role: app_admin}
    max_duration: 4h
    default_duration: 1h
    require_justification: true
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h}
    breakglass: {allowed: true, max_duration: 1h}
    notify: ["#sec-alerts"]
    expiry_reminder: 10m
  two-man:
    description: Needs two approvals
    provider: demo
    max_duration: 2h
    approval: {required: true, approvers: [group:dba-leads, sec-lead@example.com],
               min_approvals: 2}
  staging-deploy:
    description: Deploy to staging
    provider: demo
    max_duration: 8h
    default_duration: 2h
    require_justification: false
  billing-read:
    provider: demo
    require_ticket: "^(INC|CHG)-[0-9]+$"
    max_duration: 2h
    approval: {required: true, approvers: [sec-lead@example.com]}
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
  - {user: bob@example.com, role: two-man, type: eligible}
  - {user: bob@example.com, role: staging-deploy, type: eligible}
  - {user: bob@example.com, role: billing-read, type: eligible}
  - {user: alice@example.com, role: prod-db-admin, type: eligible}
  - {user: carol@example.com, role: staging-deploy, type: eligible}
"""


@dataclass
class Pim:
    core: PimCore
    clock: FakeClock
    provider: RecordingProvider
    chat: RecordingChatGateway

    async def say(self, email: str, text: str, platform: str = "console") -> Reply:
        reply = await self.core.handle_text(Actor(email, platform), text)
        await self.core.drain()
        return reply

    async def click(self, email: str, action: ActionId, value: str,
                    inputs: dict[str, str] | None = None) -> Reply:
        reply = await self.core.handle_action(Actor(email), action, value, inputs)
        await self.core.drain()
        return reply

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.core.drain()

    async def enrol(self, email: str) -> pyotp.TOTP:
        """Enrol a person in MFA and confirm it; returns their authenticator."""
        reply = await self.say(email, "mfa enroll")
        assert reply.ok, reply.text
        sent = self.chat.to(f"user:{email}")[-1].card  # the enrolment message, in their DM
        secret = sent.text.split("Key: ")[1].split()[0]
        totp = pyotp.TOTP(secret)
        confirmed = await self.say(email, f"mfa confirm {totp.at(self.clock.now())}")
        assert confirmed.ok, confirmed.text
        self.clock.advance(timedelta(seconds=30))  # the next code is a fresh time step
        return totp

    def code(self, totp: pyotp.TOTP) -> str:
        return str(totp.at(self.clock.now()))

    def wrong_code(self, totp: pyotp.TOTP) -> str:
        return wrong_code(totp, self.clock.now())

    def cards_to(self, audience: str) -> list[Card]:
        return [d.latest for d in self.chat.to(audience)]


async def make_pim(db: Database, policy_text: str = POLICY, *,
                   provider: RecordingProvider | None = None) -> Pim:
    policy: Policy = parse_policy(policy_text)
    clock = FakeClock()
    await apply_policy(db, policy, clock)
    recording = provider or RecordingProvider()
    mfa = MfaService(db, SecretBox(secrets.token_bytes(32)), clock)
    core = PimCore(db, policy, {"demo": recording}, clock, mfa=mfa)
    chat = RecordingChatGateway()
    core.add_gateway(chat)
    await core.drain()
    return Pim(core, clock, recording, chat)


def request_id_of(reply: Reply) -> str:
    """The request a reply is about (carried by the reply, never parsed from its text)."""
    assert reply.subject, reply.text
    return reply.subject
