"""``pimbot providers check``: credentials and permissions tested against the live service
(here the local fake), nothing granted."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from microsoft_support import RESOURCE_GROUP
from msfake import APP, SECRET_ENV, SUBSCRIPTION, TENANT, MicrosoftCloud, microsoft_cloud
from msfake.state import CONTRIBUTOR, GLOBAL_ADMIN
from pimbot.policy import parse_policy
from pimbot.providers.checking import check_providers, format_reports
from pimbot.providers.holders import ProbeOutcome
from server_process import clean_env, pimbot_command

POLICY = """\
admins: [sec-lead@example.com]
providers:
  entra: {{type: entra-group, tenant_id: "{tenant}", client_id: "{app}",
           client_secret_env: {secret_env}, authority: "{authority}", graph_url: "{graph}"}}
  dirroles: {{type: entra-role, tenant_id: "{tenant}", client_id: "{app}",
              client_secret_env: {secret_env}, authority: "{authority}", graph_url: "{graph}",
              mode: pim}}
  arm: {{type: azure-rbac, tenant_id: "{tenant}", client_id: "{app}",
         client_secret_env: {secret_env}, authority: "{authority}", graph_url: "{graph}",
         arm_url: "{arm}"}}
  hooks: {{type: webhook, url: "https://iam.example.com/pim", secret_env: {secret_env}}}
roles:
  group-role: {{provider: entra, grant: {{group_id: "{group}"}}}}
  dir-role: {{provider: dirroles, grant: {{role_definition_id: "{role}"}}}}
  rg-role: {{provider: arm, grant: {{scope: "{scope}", role_definition_id: "{contributor}"}}}}
"""


def policy_text(cloud: MicrosoftCloud, group: str) -> str:
    return POLICY.format(tenant=TENANT, app=APP, secret_env=SECRET_ENV,
                         authority=cloud.authority, graph=cloud.graph_url, arm=cloud.arm_url,
                         group=group, role=GLOBAL_ADMIN, scope=RESOURCE_GROUP,
                         contributor=CONTRIBUTOR)


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[MicrosoftCloud]:
    async with microsoft_cloud(tmp_path) as fake:
        yield fake


def _writes(cloud: MicrosoftCloud) -> list[str]:
    return [f"{s.method} {s.path}" for s in cloud.state.seen
            if s.service != "login" and s.method != "GET"
            and not s.path.endswith("/getByIds")]


async def test_everything_in_order_is_reported_ok_and_nothing_is_granted(
        cloud: MicrosoftCloud) -> None:
    group = cloud.state.add_group("prod-admins")
    policy = parse_policy(policy_text(cloud, group))
    reports = await check_providers(policy, cloud.env, http=cloud.session)
    text = format_reports(reports)
    assert [r.ok for r in reports] == [True, True, True, True], text
    assert f"ok       group {group}" in text
    assert "ok       permission to add and remove group members — GroupMember.ReadWrite.All" \
        in text
    assert f"ok       directory role {GLOBAL_ADMIN}" in text
    assert f"ok       permissions at {RESOURCE_GROUP}" in text
    assert "skipped  nothing to test" in text  # the webhook
    assert _writes(cloud) == []
    assert not any(t in text for t in cloud.state.tokens)


async def test_a_missing_permission_group_and_azure_right_are_named(
        cloud: MicrosoftCloud) -> None:
    cloud.state.graph_permissions = ["User.Read.All"]
    cloud.state.arm_actions = ["Microsoft.Authorization/*/read"]
    policy = parse_policy(policy_text(cloud, "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"))
    reports = {r.provider: r for r in await check_providers(policy, cloud.env,
                                                            http=cloud.session)}
    problems = {name: [f"{f.what}: {f.detail}" for f in r.findings
                       if f.outcome is ProbeOutcome.PROBLEM] for name, r in reports.items()}
    assert problems["entra"] == [
        "permission to add and remove group members: grant the application permission "
        "GroupMember.ReadWrite.All (with admin consent)",
        "group 0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f: Microsoft Graph answered 404 "
        "Request_ResourceNotFound (does it exist?)"]
    assert problems["dirroles"] == [
        "permission to assign directory roles through PIM: grant the application permission "
        "RoleAssignmentSchedule.ReadWrite.Directory (with admin consent)"]
    assert problems["arm"] == [
        f"permissions at {RESOURCE_GROUP}: missing Microsoft.Authorization/roleAssignments/"
        "write, Microsoft.Authorization/roleAssignments/delete"]


async def test_a_refused_secret_is_a_problem_not_a_crash(cloud: MicrosoftCloud) -> None:
    cloud.state.secrets = {APP: "rotated"}
    policy = parse_policy(policy_text(cloud, cloud.state.add_group("g")))
    [entra, *_] = await check_providers(policy, cloud.env, http=cloud.session)
    [token] = entra.findings
    assert token.outcome is ProbeOutcome.PROBLEM and "AADSTS7000215" in token.detail


async def test_the_command_trusts_the_system_store_and_exits_1_on_a_problem(
        cloud: MicrosoftCloud, tmp_path: Path) -> None:
    """The real ``pimbot providers check``: TLS trust from SSL_CERT_FILE (as in production)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(cloud, cloud.state.add_group("g")), encoding="utf-8")
    env = clean_env(tmp_path, PIMBOT_POLICY=str(policy), SSL_CERT_FILE=str(
        cloud.certificate.ca_file), **cloud.env)
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "providers", "check", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out.decode(), err.decode())
    assert "entra (entra-group): ok" in out.decode()
    assert SUBSCRIPTION not in err.decode() and os.environ.get(SECRET_ENV) is None
    cloud.state.arm_actions = []
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "providers", "check", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "arm (azure-rbac): PROBLEMS" in out.decode()


@pytest.mark.postgres
async def test_postgres_is_connected_to_and_its_roles_looked_at() -> None:
    from postgres_support import postgres_url

    url = postgres_url()
    policy = parse_policy(f"""\
admins: [sec-lead@example.com]
providers:
  proddb: {{type: postgres, dsn: "{url}"}}
roles:
  there: {{provider: proddb, grant: {{role: pg_read_all_data}}}}
  missing: {{provider: proddb, grant: {{role: pimbot_no_such_role}}}}
""")
    [report] = await check_providers(policy, {})
    found = {f.what: (f.outcome, f.detail) for f in report.findings}
    assert found["connect"][0] is ProbeOutcome.OK
    assert found["create login roles"][0] is ProbeOutcome.OK
    assert found["role pg_read_all_data"] == (ProbeOutcome.OK, "exists, grantable")
    assert found["role pimbot_no_such_role"] == (ProbeOutcome.PROBLEM, "does not exist")
    assert not report.ok
