"""``policy validate`` for the Microsoft providers: ids, scopes, credentials and URLs are
checked before anything is sent, each error at its YAML path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pimbot.domain.model import ProviderConfig
from pimbot.policy import PolicyError, parse_policy
from pimbot.providers import ProviderConfigError, provider_config_errors

TENANT = "8f4b5a2c-1d3e-4f60-a7b8-9c0d1e2f3a4b"
APP = "2b7c9d1e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
GROUP = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
ROLE = "62e90394-69f5-4237-9190-012177145e10"
SUB = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
ENV = {"PIM_GRAPH_SECRET": "s3cret"}

POLICY = f"""\
admins: [sec-lead@example.com]
providers:
  entra: {{type: entra-group, tenant_id: "{TENANT}", client_id: "{APP}",
           client_secret_env: PIM_GRAPH_SECRET}}
  dirroles: {{type: entra-role, tenant_id: "{TENANT}", client_id: "{APP}",
              client_secret_env: PIM_GRAPH_SECRET, mode: pim}}
  arm: {{type: azure-rbac, tenant_id: "{TENANT}", client_id: "{APP}",
         client_secret_env: PIM_GRAPH_SECRET, drift: revoke, allow: [breakglass@example.com]}}
roles:
  group-role: {{provider: entra, grant: {{group_id: "GROUP"}}}}
  dir-role: {{provider: dirroles, grant: {{role_definition_id: "ROLE",
                                          directory_scope_id: "SCOPE"}}}}
  rg-role: {{provider: arm, grant: {{scope: "RGSCOPE", role_definition_id: "{ROLE}"}}}}
"""


def policy_text(group: str = GROUP, role: str = ROLE, scope: str = "/",
                rg_scope: str = f"/subscriptions/{SUB}/resourceGroups/rg-prod") -> str:
    return (POLICY.replace("GROUP", group).replace('"ROLE"', f'"{role}"')
            .replace("RGSCOPE", rg_scope).replace("SCOPE", scope))


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(textwrap.dedent(text))
    return [f"{issue.path}: {issue.message}" for issue in caught.value.issues]


def test_a_good_policy_for_every_microsoft_provider_validates() -> None:
    policy = parse_policy(policy_text())
    assert provider_config_errors(policy.providers, ENV) == []
    assert policy.providers["arm"].settings["drift"] == "revoke"


@pytest.mark.parametrize(("change", "path", "fragment"), [
    ({"group": "prod-admins"}, "roles.group-role.grant.group_id", "is not a GUID"),
    ({"role": "Global Administrator"}, "roles.dir-role.grant.role_definition_id",
     "is not a GUID"),
    ({"scope": "/administrativeUnits/nope"}, "roles.dir-role.grant.directory_scope_id",
     "is not a directory scope"),
    ({"rg_scope": f"/subscriptions/{SUB}/resourceGroups/"},
     "roles.rg-role.grant.scope", "is not an Azure scope"),
    ({"rg_scope": "subscriptions/x"}, "roles.rg-role.grant.scope", "is not an Azure scope"),
])
def test_ids_and_scopes_must_be_well_formed(change: dict[str, str], path: str,
                                            fragment: str) -> None:
    found = problems(policy_text(**change))
    assert [p for p in found if p.startswith(f"{path}: ") and fragment in p], found


@pytest.mark.parametrize("scope", [
    "/", f"/subscriptions/{SUB}", f"/subscriptions/{SUB}/resourceGroups/rg-prod.1",
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
    "/providers/Microsoft.Management/managementGroups/platform",
])
def test_every_kind_of_azure_scope_is_accepted(scope: str) -> None:
    parse_policy(policy_text(rg_scope=scope))


def test_unknown_grant_keys_are_refused_at_their_path() -> None:
    text = policy_text().replace('grant: {group_id:', 'grant: {groupid: "x", group_id:')
    assert "roles.group-role.grant.groupid: is not a grant parameter of this provider " \
           "(known: group_id, access)" in problems(text)


def _error(settings: dict[str, object], kind: str = "entra-group",
           env: dict[str, str] = ENV) -> ProviderConfigError:
    base: dict[str, object] = {"tenant_id": TENANT, "client_id": APP,
                               "client_secret_env": "PIM_GRAPH_SECRET"}
    config = ProviderConfig("entra", kind, {k: v for k, v in {**base, **settings}.items()
                                            if v is not None})
    [error] = provider_config_errors({"entra": config}, env)
    return error


@pytest.mark.parametrize(("settings", "path", "fragment"), [
    ({"tenant_id": "my tenant"}, "tenant_id", "is not a tenant id"),
    ({"client_id": "pimbot-app"}, "client_id", "is not a GUID"),
    ({"client_secret_env": "MISSING"}, "client_secret_env", "MISSING is not set"),
    ({"client_secret_env": None}, "client_secret_env", "no credential"),
    ({"certificate_path": "/nonexistent.pem"}, "certificate_path", "not both"),
    ({"client_secret_env": None, "certificate_path": "/nonexistent.pem"}, "certificate_path",
     "no file at /nonexistent.pem"),
    ({"authority": "http://login.example.com"}, "authority", "must be an https:// URL"),
    ({"graph_url": "https://graph.microsoft.com/v1.0/"}, "graph_url", "bare base URL"),
    ({"mode": "eventually"}, "mode", "must be one of direct, pim"),
    ({"timeout": 45}, "timeout", "at most 30 seconds"),
    ({"drift": "shout"}, "drift", "must be one of off, alert, revoke"),
    ({"reconcile_every": 10}, "reconcile_every", "at least 1m"),
    ({"arm_url": "https://management.azure.com"}, "arm_url", "unknown setting"),
    ({"client_secret_env": None, "workload_identity": True}, "federated_token_file",
     "no federated token file"),
])
def test_provider_settings_are_checked_with_their_paths(settings: dict[str, object], path: str,
                                                        fragment: str) -> None:
    error = _error(settings)
    assert error.path == f"providers.entra.{path}", error
    assert fragment in str(error), str(error)


def test_a_secret_is_never_part_of_an_error(tmp_path: Path) -> None:
    error = _error({"client_id": "not-a-guid"})
    assert "s3cret" not in str(error)


def test_drift_revoke_needs_a_provider_that_can_list_holders() -> None:
    config = ProviderConfig("hooks", "webhook", {"url": "https://iam.example.com/pim",
                                                 "secret_env": "S", "drift": "revoke"})
    [error] = provider_config_errors({"hooks": config}, {"S": "x"})
    assert error.path == "providers.hooks.drift"
    assert "cannot" in error.reason


def test_managed_and_workload_identity_need_no_secret(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("assertion")
    managed = {"client_secret_env": None, "client_id": None, "managed_identity": True}
    workload = {"client_secret_env": None, "workload_identity": True}
    for settings, env in ((managed, {}), (workload, {"AZURE_FEDERATED_TOKEN_FILE": str(token)})):
        config = ProviderConfig("entra", "entra-group", {
            k: v for k, v in {"tenant_id": TENANT, "client_id": APP, **settings}.items()
            if v is not None})
        assert provider_config_errors({"entra": config}, env) == []


def test_the_readme_policy_for_the_microsoft_providers_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Microsoft: entra-group, entra-role, azure-rbac", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy("admins: [sec-lead@example.com]\n" + block)
    assert {p.type for p in policy.providers.values()} == {"entra-group", "entra-role",
                                                           "azure-rbac"}
    env = {"PIM_GRAPH_SECRET": "x", "PIM_ARM_SECRET": "y"}
    assert provider_config_errors(policy.providers, env) == []
