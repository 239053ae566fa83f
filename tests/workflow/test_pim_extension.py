"""In ``mode: pim`` Entra and Azure end access themselves at the end pimbot sent: when the
access is extended (``extend``, or a later hold joining the grant) that end moves too.

The real Microsoft providers (wrapped for telemetry as ``pimbot run`` wraps them) against the
local fake of Graph and ARM, which keeps the end PIM enforces for every assignment it made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from msfake import APP, SECRET_ENV, SUBSCRIPTION, TENANT, MicrosoftCloud, microsoft_cloud
from msfake.state import CONTRIBUTOR, GLOBAL_ADMIN
from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import NullTelemetry
from pimbot.providers import build_providers
from pimbot.providers.instrumented import instrumented
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow
from pimbot.testing.fakes import FakeClock, RecordingChatGateway
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore

BOB, LEAD = "bob@example.com", "sec-lead@example.com"
SCOPE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod"
ROLES = {"entra-group": "group-admin", "entra-role": "global-admin",
         "azure-rbac": "rg-contributor"}

POLICY = """\
admins: [sec-lead@example.com]
providers:
  entra:    {{type: entra-group, mode: {mode}, {common}}}
  dirroles: {{type: entra-role, mode: {mode}, {common}}}
  arm:      {{type: azure-rbac, mode: {mode}, arm_url: "{arm}", {common}}}
roles:
  group-admin:
    provider: entra
    grant: {{group_id: "{group}"}}
    require_justification: false
    max_duration: 8h
    notify: ["#sec-alerts"]
  global-admin:
    provider: dirroles
    grant: {{role_definition_id: "{role}", directory_scope_id: /}}
    require_justification: false
    max_duration: 8h
    notify: ["#sec-alerts"]
  rg-contributor:
    provider: arm
    grant: {{scope: "{scope}", role_definition_id: "{contributor}"}}
    require_justification: false
    max_duration: 8h
    notify: ["#sec-alerts"]
assignments:
  - {{user: {bob}, role: group-admin, type: eligible}}
  - {{user: {bob}, role: global-admin, type: eligible}}
  - {{user: {bob}, role: rg-contributor, type: eligible}}
"""


@dataclass
class Bot:
    core: PimCore
    cloud: MicrosoftCloud
    chat: RecordingChatGateway
    group: str
    bob: str

    async def say(self, email: str, text: str) -> str:
        reply = await self.core.handle_text(Actor(email, "console"), text)
        await self.core.drain()
        assert reply.ok, reply.said("")
        return reply.text

    def pim_end(self, kind: str) -> str | None:
        parts = {"entra-group": ("group", self.group, self.bob),
                 "entra-role": ("role", self.bob, GLOBAL_ADMIN, "/"),
                 "azure-rbac": ("arm", SCOPE, CONTRIBUTOR, self.bob)}[kind]
        return self.cloud.state.pim_end(*parts)

    def expire_at_pim(self, kind: str) -> None:
        """PIM reached the end it was sent, and took the access away."""
        state = self.cloud.state
        if kind == "entra-group":
            state.pim_expire("group", self.group, self.bob)
            state.groups[self.group].discard(self.bob)
        elif kind == "entra-role":
            state.pim_expire("role", self.bob, GLOBAL_ADMIN, "/")
            state.role_assignments.clear()
        else:
            state.pim_expire("arm", SCOPE, CONTRIBUTOR, self.bob)
            state.arm_assignments.clear()

    def actions(self) -> list[str]:
        return [str(r.get("properties", r).get("action") or r["properties"]["requestType"])
                for r in self.cloud.state.schedule_requests]

    async def events(self, action: str) -> list[AuditEventRow]:
        async with self.core.ctx.db.read() as session:
            return list((await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == action))).scalars())


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[MicrosoftCloud]:
    async with microsoft_cloud(tmp_path) as fake:
        yield fake


async def start(db: Database, cloud: MicrosoftCloud, mode: str = "pim") -> Bot:
    group, bob = cloud.state.add_group("prod-admins"), cloud.state.add_user(BOB)
    common = (f'tenant_id: "{TENANT}", client_id: "{APP}", client_secret_env: {SECRET_ENV}, '
              f'authority: "{cloud.authority}", graph_url: "{cloud.graph_url}"')
    text = POLICY.format(mode=mode, common=common, arm=cloud.arm_url, group=group,
                         role=GLOBAL_ADMIN, scope=SCOPE, contributor=CONTRIBUTOR, bob=BOB)
    policy = parse_policy(text)
    clock = FakeClock()
    await apply_policy(db, policy, clock)
    providers = instrumented(build_providers(policy.providers, cloud.env, http=cloud.session,
                                             clock=clock), NullTelemetry())
    core = PimCore(db, policy, providers, clock)
    chat = RecordingChatGateway()
    core.add_gateway(chat)
    await core.drain()
    return Bot(core, cloud, chat, group, bob)


@pytest.mark.parametrize("kind", list(ROLES))
async def test_an_extension_moves_the_end_pim_enforces(
        db: Database, cloud: MicrosoftCloud, kind: str) -> None:
    bot = await start(db, cloud)
    role = ROLES[kind]
    await bot.say(BOB, f"activate {role} for 1h")
    assert bot.pim_end(kind) == "2026-11-02T10:00:00Z"
    await bot.say(BOB, f"extend {role} for 2h")
    assert bot.pim_end(kind) == "2026-11-02T12:00:00Z", "Entra / Azure now end it with pimbot"
    assert [a.lower() for a in bot.actions()] == ["adminassign", "adminextend"]
    [extended] = await bot.events("grant.extended")
    assert extended.detail["expires_at"] == "2026-11-02T12:00:00+00:00"
    await bot.say(BOB, f"deactivate {role}")
    assert bot.actions()[-1].lower() == "adminremove"


@pytest.mark.parametrize("kind", list(ROLES))
async def test_a_later_hold_joining_the_grant_moves_the_end_too(
        db: Database, cloud: MicrosoftCloud, kind: str) -> None:
    bot = await start(db, cloud)
    role = ROLES[kind]
    await bot.say(BOB, f"activate {role} for 1h")
    await bot.say(LEAD, f"assign {BOB} {role} active for 4h")  # joins the live grant
    assert bot.pim_end(kind) == "2026-11-02T13:00:00Z"
    assert [a.lower() for a in bot.actions()] == ["adminassign", "adminextend"]
    await bot.say(LEAD, f"assign {BOB} {role} active for 2h")  # ends earlier: nothing to move
    assert [a.lower() for a in bot.actions()] == ["adminassign", "adminextend"]


@pytest.mark.parametrize("kind", list(ROLES))
async def test_access_pim_ended_already_is_assigned_again_until_the_new_end(
        sqlite_db: Database, cloud: MicrosoftCloud, kind: str) -> None:
    bot = await start(sqlite_db, cloud)
    role = ROLES[kind]
    await bot.say(BOB, f"activate {role} for 1h")
    bot.expire_at_pim(kind)  # the clocks of pimbot and PIM differ by a little
    await bot.say(BOB, f"extend {role} for 1h")
    assert bot.pim_end(kind) == "2026-11-02T11:00:00Z"
    tried = [str(s.body) for s in cloud.state.seen if "dminExtend" in str(s.body)]
    assert len(tried) == 1, "asked to extend first: PIM said it has no such assignment"
    assert [a.lower() for a in bot.actions()] == ["adminassign", "adminassign"]


async def test_direct_mode_makes_no_call_for_an_extension(
        sqlite_db: Database, cloud: MicrosoftCloud) -> None:
    bot = await start(sqlite_db, cloud, mode="direct")
    await bot.say(BOB, "activate group-admin for 1h")
    seen = len(cloud.state.seen)
    await bot.say(BOB, "extend group-admin for 2h")
    assert cloud.state.seen[seen:] == [], "pimbot revokes direct access itself"


async def test_a_refused_extension_tells_the_channels_when_pim_will_end_it(
        sqlite_db: Database, cloud: MicrosoftCloud) -> None:
    bot = await start(sqlite_db, cloud)
    await bot.say(BOB, "activate global-admin for 1h")
    cloud.state.fail("graph", 403, "Authorization_RequestDenied", method="POST",
                     path_contains="roleAssignmentScheduleRequests", times=1)
    await bot.say(BOB, "extend global-admin for 2h")
    assert bot.pim_end("entra-role") == "2026-11-02T10:00:00Z"
    [failed] = await bot.events("grant.extend_failed")
    assert failed.outcome == "failed"
    notices = [d.latest for d in bot.chat.to("channel:slack:#sec-alerts")]
    warned = [c for c in notices if "may end early" in c.title]
    assert len(warned) == 1 and "2026-11-02 10:00 UTC" in warned[0].text, notices
