"""A world for replica tests: a PostgreSQL database, a webhook receiver as the provider, a
policy with many people, replicas as processes, and a client core in the test that files
activations on the same database (as the chat adapters of some replica would)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hook_policy import SECRET_ENV
from sqlalchemy import func, select
from webhook_receiver import WebhookReceiver

from pimbot.policy import parse_policy
from pimbot.ports import SystemClock
from pimbot.providers import build_providers
from pimbot.secretbox import generate_key
from pimbot.store.audit_crypto import AuditKeyring, load_audit_key
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import GrantRow, RequestRow
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from replica_process import replica_env

ROLE = "staging-deploy"
WAIT = 60.0  # seconds before a wait fails the test (a hang fails, it never blocks CI)


def people(count: int) -> list[str]:
    return [f"user{n:05d}@example.com" for n in range(count)]


def policy_text(url: str, count: int, max_concurrency: int | None = None) -> str:
    limit = f", max_concurrency: {max_concurrency}" if max_concurrency else ""
    lines = [
        "admins: [sec-lead@example.com]",
        "providers:",
        f'  hooks: {{type: webhook, url: "{url}", secret_env: {SECRET_ENV}, timeout: 5s{limit}}}',
        "roles:",
        f"  {ROLE}: {{provider: hooks, grant: {{group: deployers}}, max_duration: 8h,"
        "    require_justification: false}",
        "assignments:",
    ]
    lines += [f"  - {{user: {email}, role: {ROLE}, type: eligible}}" for email in people(count)]
    return "\n".join(lines) + "\n"


@dataclass
class World:
    tmp_path: Path
    url: str
    receiver: WebhookReceiver
    count: int
    audit_key: str
    env: dict[str, str]
    client_db: Database
    client: PimCore

    @classmethod
    async def make(cls, tmp_path: Path, url: str, receiver: WebhookReceiver, count: int,
                   max_concurrency: int | None = None, **extra: str) -> World:
        text = policy_text(receiver.url, count, max_concurrency)
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(text, encoding="utf-8")
        audit_key = generate_key()
        env = replica_env(tmp_path, url, policy_file, PIMBOT_SECRET_KEY=generate_key(),
                          PIMBOT_AUDIT_KEY=audit_key,
                          **{SECRET_ENV: receiver.secret.decode()}, **extra)
        db = Database(url, audit_keyring=AuditKeyring(load_audit_key(audit_key)))
        policy = parse_policy(text)
        providers = build_providers(policy.providers, {SECRET_ENV: receiver.secret.decode()})
        client = PimCore(db, policy, providers, SystemClock(), owner="test-client")
        return cls(tmp_path, url, receiver, count, audit_key, env, db, client)

    async def activate(self, emails: list[str], duration: str) -> list[str]:
        """File an activation for each person (no approval: each becomes a grant job)."""
        replies = await asyncio.gather(*(
            self.client.handle_text(Actor(email), f"activate {ROLE} for {duration}")
            for email in emails))
        for reply in replies:
            assert reply.ok, reply.text
        return [str(reply.card.context.split()[-1]) for reply in replies if reply.card]

    async def until(self, predicate: Callable[[], bool], what: str,
                    within: float = WAIT) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def until_db(self, count: int, within: float = WAIT) -> None:
        """Until ``count`` grants are recorded revoked (the provider's answer is recorded
        just after it arrives)."""
        deadline = time.monotonic() + within
        while True:
            async with self.client_db.read() as session:
                done = await session.scalar(select(func.count()).select_from(GrantRow).where(
                    GrantRow.state == "revoked"))
            if done == count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{done} of {count} grants recorded revoked")
            await asyncio.sleep(0.1)

    async def until_db_quiet(self, within: float = WAIT) -> None:
        """Until no request is live and no grant is on its way (everything has ended)."""
        deadline = time.monotonic() + within
        while True:
            async with self.client_db.read() as session:
                live = await session.scalar(select(func.count()).select_from(RequestRow).where(
                    RequestRow.state.in_(("approved", "active"))))
                open_grants = await session.scalar(select(func.count()).select_from(
                    GrantRow).where(GrantRow.state != "revoked"))
            if live == 0 and open_grants == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{live} requests live, {open_grants} grants not revoked")
            await asyncio.sleep(0.1)

    async def verify(self) -> None:
        report = await verify_chain(self.client_db)
        assert report.ok, report.problem

    async def close(self) -> None:
        await self.client_db.dispose()
