"""Drift at providers that list their holders: a PostgreSQL role membership and an Entra group
member added by hand are reported within one reconcile interval, and removed under
``drift: revoke`` unless ``allow:`` names them; pimbot's own grants are left alone."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select

from msfake import APP, SECRET_ENV, TENANT, MicrosoftCloud, microsoft_cloud
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import NullTelemetry, Provider
from pimbot.providers import build_providers
from pimbot.providers.instrumented import instrumented
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow
from pimbot.testing.fakes import FakeClock, RecordingChatGateway
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from pimbot.workflow.jobs.drift import schedule_next
from postgres_support import postgres_url

BOB = "bob@example.com"
ALERTS = "channel:slack:#sec-alerts"


class Bot:
    def __init__(self, core: PimCore, clock: FakeClock, chat: RecordingChatGateway) -> None:
        self.core, self.clock, self.chat = core, clock, chat

    async def say(self, email: str, text: str) -> str:
        reply = await self.core.handle_text(Actor(email, "console"), text)
        await self.core.drain()
        return reply.text

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.core.drain()

    def alerts(self) -> list[str]:
        return [d.card.title for d in self.chat.to(ALERTS)]

    async def events(self, db: Database, action: str) -> list[AuditEventRow]:
        async with db.read() as session:
            return list((await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == action))).scalars())


async def start_bot(db: Database, policy_text: str, providers: dict[str, Provider]) -> Bot:
    policy = parse_policy(policy_text)
    clock = FakeClock()
    await apply_policy(db, policy, clock)
    core = PimCore(db, policy, providers, clock)
    chat = RecordingChatGateway()
    core.add_gateway(chat)
    await schedule_next(core.ctx, clock.now())  # what PimCore.start() does
    await core.drain()
    return Bot(core, clock, chat)


# -- PostgreSQL -------------------------------------------------------------------------------

PG_POLICY = """
admins: [sec-lead@example.com]
providers:
  proddb: {{type: postgres, dsn: "{dsn}", drift: {drift}, reconcile_every: 10m,
            allow: [{breakglass}]}}
roles:
  prod-db-admin:
    provider: proddb
    grant: {{role: {role}}}
    require_justification: false
    notify: ["#sec-alerts"]
assignments:
  - {{user: {bob}, role: prod-db-admin, type: eligible}}
"""


@pytest.fixture
async def pg_names() -> AsyncIterator[dict[str, str]]:
    admin = postgres_url()
    assert admin is not None
    dsn = admin.replace("postgresql+asyncpg://", "postgresql://")
    tag = secrets.token_hex(4)
    names = {"dsn": dsn, "role": f"pimbot_t_admin_{tag}", "bob": f"pimbot_t_bob_{tag}",
             "intruder": f"pimbot_t_intruder_{tag}", "breakglass": f"pimbot_t_glass_{tag}"}
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE ROLE "{names["role"]}" NOLOGIN')
    for login in ("intruder", "breakglass"):
        await conn.execute(f'CREATE ROLE "{names[login]}" LOGIN')
    try:
        yield names
    finally:
        for key in ("bob", "intruder", "breakglass", "role"):
            await conn.execute(f'DROP ROLE IF EXISTS "{names[key]}"')
        await conn.close()


async def _members(dsn: str, role: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON "
                                "r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE "
                                "r.rolname = $1 AND u.rolname <> current_user", role)
    finally:
        await conn.close()
    return {r["rolname"] for r in rows}


@pytest.mark.postgres
@pytest.mark.parametrize("drift", ["alert", "revoke"])
async def test_a_postgres_membership_granted_by_hand_is_drift(
        db: Database, pg_names: dict[str, str], drift: str) -> None:
    bob = f"{pg_names['bob']}@example.com"
    text = PG_POLICY.format(drift=drift, bob=bob, **{k: v for k, v in pg_names.items()
                                                    if k != "bob"})
    policy = parse_policy(text)
    providers = instrumented(build_providers(policy.providers, {}, clock=FakeClock()),
                             NullTelemetry())  # wrapped as `pimbot run` wraps them
    bot = await start_bot(db, text, providers)
    await bot.say(bob, "activate prod-db-admin for 2h")  # pimbot's own grant
    role = pg_names["role"]
    conn = await asyncpg.connect(pg_names["dsn"])
    for who in ("intruder", "breakglass"):
        await conn.execute(f'GRANT "{role}" TO "{pg_names[who]}"')  # by hand
    await conn.close()

    await bot.advance(timedelta(minutes=10))  # one reconcile interval
    alerts = [t for t in bot.alerts() if t.startswith("Drift")]
    intruder = pg_names["intruder"]
    found = [t for t in alerts if intruder in t]
    assert len(found) == 1, alerts
    assert not [t for t in alerts if pg_names["bob"] in t or pg_names["breakglass"] in t]
    members = await _members(pg_names["dsn"], role)
    if drift == "revoke":
        assert found[0].startswith("Drift on prod-db-admin: removed ")
        assert members == {pg_names["bob"], pg_names["breakglass"]}
        [event] = await bot.events(db, "drift.revoked")
        assert event.detail["holder"] == intruder
    else:
        assert intruder in members
        [event] = await bot.events(db, "drift.detected")
        assert event.detail["user"] == intruder


# -- Entra ID group ---------------------------------------------------------------------------

ENTRA_POLICY = """
admins: [sec-lead@example.com]
providers:
  entra: {{type: entra-group, tenant_id: "{tenant}", client_id: "{app}",
           client_secret_env: {secret_env}, authority: "{authority}", graph_url: "{graph}",
           drift: {drift}, reconcile_every: 10m, allow: [BreakGlass@example.com, "{app_sp}"]}}
roles:
  prod-admins:
    provider: entra
    grant: {{group_id: "{group}"}}
    require_justification: false
    notify: ["#sec-alerts"]
assignments:
  - {{user: bob@example.com, role: prod-admins, type: eligible}}
"""


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[MicrosoftCloud]:
    async with microsoft_cloud(tmp_path) as fake:
        yield fake


@pytest.mark.parametrize("drift", ["alert", "revoke"])
async def test_an_entra_group_member_added_by_hand_is_drift(
        db: Database, cloud: MicrosoftCloud, drift: str) -> None:
    state = cloud.state
    group = state.add_group("prod-admins")
    bob = state.add_user(BOB)
    mallory = state.add_user("mallory@example.com", name="Mallory")
    glass = state.add_user("breakglass@example.com")
    app = state.add_service_principal("deploy-pipeline")
    text = ENTRA_POLICY.format(group=group, tenant=TENANT, app=APP, secret_env=SECRET_ENV,
                               authority=cloud.authority, graph=cloud.graph_url, drift=drift,
                               app_sp=app)
    providers = instrumented(build_providers(parse_policy(text).providers, cloud.env,
                                             http=cloud.session, clock=FakeClock()),
                             NullTelemetry())  # wrapped as `pimbot run` wraps them
    bot = await start_bot(db, text, providers)
    await bot.say(BOB, "activate prod-admins for 2h")
    assert state.members(group) == {bob}
    state.groups[group] |= {mallory, glass, app}  # by hand, in the Entra admin center

    await bot.advance(timedelta(minutes=10))
    alerts = bot.alerts()
    about = [t for t in alerts if "Drift" in t]
    assert len(about) == 1 and "mallory@example.com" in about[0], alerts
    if drift == "revoke":
        assert about[0].startswith("Drift on prod-admins: removed mallory@example.com")
        assert state.members(group) == {bob, glass, app}  # allow-listed: untouched
    else:
        assert state.members(group) == {bob, mallory, glass, app}
    await bot.advance(timedelta(minutes=10))  # the next interval: nothing new (or still there)
    assert len([t for t in bot.alerts() if "Drift" in t]) == (1 if drift == "revoke" else 2)
    await providers["entra"].close()
