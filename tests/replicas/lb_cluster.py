"""Several ``pimbot run`` replicas (real processes, one PostgreSQL database) behind a
round-robin balancer, with the webhook receiver as the provider and a read-only view of the
database for the test to check what was stored.

Only outside services are faked (Slack, the Bot Framework, the user's webhook system), at
the HTTP level; everything of pimbot's runs as it does in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from balancer import RoundRobinBalancer
from fake_slack import FakeSlack
from hook_policy import SECRET_ENV
from slack_driver import SIGNING_SECRET
from sqlalchemy import select
from webhook_receiver import Delivery, WebhookReceiver

from pimbot.secretbox import generate_key
from pimbot.store.audit_crypto import AuditKeyring, load_audit_key
from pimbot.store.audit_log import verify_chain
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from replica_process import Replica, replica_env, start_replicas

WAIT = 90.0  # generous: a loaded 2-core machine; a hang fails the test, it never blocks CI

POLICY = """\
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
providers:
  hooks: {{type: webhook, url: "{url}", secret_env: {secret_env}, timeout: 5s}}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: hooks
    grant: {{role: app_admin}}
    max_duration: 4h
    default_duration: 1h
    require_justification: true
    approval: {{required: true, approvers: ["group:dba-leads"], min_approvals: 1}}
assignments:
  - {{user: bob@example.com, role: prod-db-admin, type: eligible}}
"""


@dataclass
class Cluster:
    replicas: list[Replica]
    balancer: RoundRobinBalancer
    receiver: WebhookReceiver
    db: Database  # the test's own view of the replicas' database

    async def requests(self) -> list[RequestRow]:
        async with self.db.read() as session:
            return list((await session.execute(select(RequestRow))).scalars())

    async def audit(self, action: str) -> list[AuditEventRow]:
        async with self.db.read() as session:
            query = select(AuditEventRow).where(AuditEventRow.action == action)
            return list((await session.execute(query)).scalars())

    async def verify_chain(self) -> None:
        report = await verify_chain(self.db)
        assert report.ok, report.problem

    def hooks(self, action: str) -> list[Delivery]:
        return self.receiver.of(action)

    def logs(self) -> str:
        return "\n".join(f"== {r.name}\n{r.output()[-3000:]}" for r in self.replicas)


def slack_settings(fake: FakeSlack) -> dict[str, str]:
    """The environment of a replica serving Slack over HTTP against ``fake``."""
    return {"PIMBOT_ADAPTERS": "slack", "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "PIMBOT_SLACK_API_URL": fake.api_url}


async def until(predicate: Callable[[], bool], what: str, within: float = WAIT,
                cluster: Cluster | None = None) -> None:
    """Wait on a condition (never on a duration); fail with the replicas' logs after ``within``."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            logs = cluster.logs() if cluster is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.05)


async def until_async(check: Callable[[], object], what: str, cluster: Cluster,
                      within: float = WAIT) -> None:
    """``until`` for a coroutine function returning a truthy value when done."""
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def cluster(tmp_path: Path, url: str, receiver: WebhookReceiver, count: int,
                  settings: dict[str, str], each: Sequence[Mapping[str, str]] = ()
                  ) -> AsyncIterator[Cluster]:
    """``count`` replicas with ``settings`` (the platform's; ``each[i]`` replica ``i``'s
    own), ready, behind a balancer; every process killed and reaped afterwards (the
    database is the fixture's to drop)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(url=receiver.url, secret_env=SECRET_ENV), encoding="utf-8")
    audit_key = generate_key()
    env = replica_env(tmp_path, url, policy, PIMBOT_SECRET_KEY=generate_key(),
                      PIMBOT_AUDIT_KEY=audit_key, **{SECRET_ENV: receiver.secret.decode()})
    env.update(settings)
    replicas = await start_replicas(tmp_path, env, count, each)
    db = Database(url, audit_keyring=AuditKeyring(load_audit_key(audit_key)))
    balancer = RoundRobinBalancer([r.url for r in replicas])
    try:
        await asyncio.gather(*(r.wait_ready() for r in replicas))
        await balancer.start()
        yield Cluster(replicas, balancer, receiver, db)
    finally:
        await balancer.close()
        for replica in replicas:
            await replica.reap()
        await db.dispose()
