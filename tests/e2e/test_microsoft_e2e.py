"""Through the console, against the local fake of Graph, ARM and the token endpoint: a role
bound to each Microsoft provider is granted at the fake, deactivation and expiry revoke it,
a restart in between loses nothing, and a revoke the provider keeps refusing for a while is
retried, announced, and marked done only once the provider confirms it.

The fake speaks HTTPS; ``pimbot run`` trusts it through ``SSL_CERT_FILE``, as it would a
corporate CA in production (azure-identity refuses authorities that are not https)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from console_process import console_env, open_console

from microsoft_support import RESOURCE_GROUP
from msfake import APP, SECRET_ENV, TENANT, MicrosoftCloud, microsoft_cloud
from msfake.state import CONTRIBUTOR, GLOBAL_ADMIN

BOB = "bob@example.com"
WAIT = 30.0  # seconds to wait for the fake to see something (a hang fails, never blocks)
ALERTS = "channel slack:#sec-alerts"

POLICY = """\
admins: [sec-lead@example.com]
providers:
  entra:    {{type: entra-group, {common}}}
  dirroles: {{type: entra-role, mode: pim, {common}}}
  arm:      {{type: azure-rbac, arm_url: "{arm}", {common}}}
roles:
  group-admin:
    provider: entra
    grant: {{group_id: "{group}"}}
    require_justification: false
    notify: ["#sec-alerts"]
  global-admin:
    provider: dirroles
    grant: {{role_definition_id: "{role}", directory_scope_id: /}}
    require_justification: false
  rg-contributor:
    provider: arm
    grant: {{scope: "{scope}", role_definition_id: "{contributor}"}}
    require_justification: false
assignments:
  - {{user: {bob}, role: group-admin, type: eligible}}
  - {{user: {bob}, role: global-admin, type: eligible}}
  - {{user: {bob}, role: rg-contributor, type: eligible}}
"""


async def until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[MicrosoftCloud]:
    async with microsoft_cloud(tmp_path) as fake:
        yield fake


def environment(tmp_path: Path, cloud: MicrosoftCloud, group: str) -> dict[str, str]:
    common = (f'tenant_id: "{TENANT}", client_id: "{APP}", client_secret_env: {SECRET_ENV}, '
              f'authority: "{cloud.authority}", graph_url: "{cloud.graph_url}", timeout: 5s')
    policy = tmp_path / "microsoft-policy.yaml"
    policy.write_text(POLICY.format(common=common, arm=cloud.arm_url, group=group,
                                    role=GLOBAL_ADMIN, scope=RESOURCE_GROUP,
                                    contributor=CONTRIBUTOR, bob=BOB), encoding="utf-8")
    return console_env(tmp_path, policy, SSL_CERT_FILE=str(cloud.certificate.ca_file),
                       **cloud.env)


async def test_each_microsoft_provider_grants_and_revokes_through_chat_across_a_restart(
        tmp_path: Path, cloud: MicrosoftCloud) -> None:
    state = cloud.state
    bob, group = state.add_user(BOB), state.add_group("prod-admins")
    env = environment(tmp_path, cloud, group)
    held_rg = lambda: [a for a in state.arm_holders(RESOURCE_GROUP, CONTRIBUTOR)  # noqa: E731
                       if a.principal_id == bob]

    async with open_console(tmp_path, env) as console:
        await console.type(f"as {BOB}", "activate group-admin for 1h",
                           "activate global-admin for 1h", "activate rg-contributor for 3s")
        await until(lambda: bob in state.members(group) and state.holds_directory_role(
            bob, GLOBAL_ADMIN) and held_rg(), "all three grants at the fake")
        first = await console.finish()
    assert first.code == 0, first.err
    [assign] = [r for r in state.schedule_requests if r.get("action") == "adminAssign"]
    assert assign["scheduleInfo"]["expiration"]["type"] == "afterDateTime"  # Entra ends it too
    assert held_rg(), "run 1 outlived the 3s activation: nothing left to prove"

    await asyncio.sleep(4)  # rg-contributor expires while pimbot is stopped
    async with open_console(tmp_path, env) as console:
        await until(lambda: not held_rg(), "the expired Azure role assignment revoked at start")
        await console.type(f"as {BOB}", "deactivate group-admin", "deactivate global-admin")
        await until(lambda: bob not in state.members(group)
                    and not state.holds_directory_role(bob, GLOBAL_ADMIN), "both revokes")
        await console.type("status")
        second = await console.finish()
    assert second.code == 0, second.err
    assert "You have no open requests and no active roles." in second.text, second.text
    removes = [r for r in state.schedule_requests if r.get("action") == "adminRemove"]
    assert len(removes) == 1  # PIM's own end is set, and pimbot still removed it at the end
    assert [s.method for s in state.requests_to("arm") if "roleAssignments/" in s.path
            and s.method in ("PUT", "DELETE")] == ["PUT", "DELETE"]
    assert not [t for t in state.tokens if t in first.text + first.err + second.text
                + second.err], "a token reached the console or the logs"


async def test_a_revoke_the_provider_refuses_for_a_while_is_retried_and_announced(
        tmp_path: Path, cloud: MicrosoftCloud) -> None:
    state = cloud.state
    bob, group = state.add_user(BOB), state.add_group("prod-admins")
    env = environment(tmp_path, cloud, group)
    async with open_console(tmp_path, env) as console:
        await console.type(f"as {BOB}", "activate group-admin for 1h")
        await until(lambda: bob in state.members(group), "the grant")
        outage = state.fail("graph", 500, "UnknownError", method="DELETE", times=3)
        await console.type("deactivate group-admin")
        await console.read_until(f"── to {ALERTS}")  # the first failure is announced
        await console.read_until("Revoking group-admin from bob@example.com is failing")
        await console.type("status")
        pending = await console.read_until("revoke pending")
        assert bob in state.members(group) and outage.times > 0, "recovered too early"
        assert "failed attempt(s)" in pending
        await until(lambda: bob not in state.members(group), "the revoke once it recovers")
        await console.read_until("Revoked group-admin from bob@example.com at last")
        await console.type("status")
        await console.read_until("You have no open requests and no active roles.")
        run = await console.finish()
    assert run.code == 0, run.err
    assert outage.times == 0
    deletes = [s for s in state.requests_to("graph", "DELETE") if "/members/" in s.path]
    assert len(deletes) == 4  # three refused, the fourth confirmed
    failing = [line for line in run.out if "is failing; retrying" in line]
    assert len(failing) == 1, "alerted at every failure, not at the first and hourly"
