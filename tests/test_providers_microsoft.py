"""The Microsoft providers against the local fake cloud: what goes on the wire, throttling,
404 on revoke, 403 naming the permission, tokens expiring, people found and cached."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from microsoft_support import BOB, RESOURCE_GROUP, Sleeps, build_microsoft, grant_for, people
from msfake import MicrosoftCloud, microsoft_cloud
from msfake.state import CONTRIBUTOR, GLOBAL_ADMIN
from pimbot.providers import ProviderError
from pimbot.providers.microsoft.refs import NAMESPACE, MicrosoftRef
from pimbot.testing.fakes import FakeClock
from providers_support import make_target


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[MicrosoftCloud]:
    async with microsoft_cloud(tmp_path) as fake:
        people(fake)
        yield fake


async def test_a_group_membership_goes_on_the_wire_as_graph_documents_it(
        cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "entra-group")
    grant = grant_for(cloud, "entra-group")
    target = make_target(grant=grant)
    bob = cloud.state.user_by_upn(BOB)
    assert bob is not None
    ref = await provider.grant(target)
    assert cloud.state.members(grant["group_id"]) == {bob.id}
    [add] = [s for s in cloud.state.requests_to("graph", "POST") if "/members/$ref" in s.path]
    assert add.body == {"@odata.id": f"{cloud.graph_url}/v1.0/directoryObjects/{bob.id}"}
    recorded = MicrosoftRef.parse(ref)
    assert recorded is not None and recorded.principal == bob.id and not recorded.adopted
    await provider.revoke(target, ref)
    assert cloud.state.members(grant["group_id"]) == set()
    [delete] = cloud.state.requests_to("graph", "DELETE")
    assert delete.path == f"/v1.0/groups/{grant['group_id']}/members/{bob.id}/$ref"
    await provider.close()


async def test_revoking_what_is_gone_is_success(cloud: MicrosoftCloud) -> None:
    for kind in ("entra-group", "entra-role", "azure-rbac"):
        provider = build_microsoft(cloud, kind)
        target = make_target(grant=grant_for(cloud, kind))
        ref = await provider.grant(target)
        cloud.state.groups = {g: set() for g in cloud.state.groups}  # removed by hand
        cloud.state.role_assignments.clear()
        cloud.state.arm_assignments.clear()
        before = len(cloud.state.seen)
        await provider.revoke(target, ref)  # 404 (Graph) or 204 (ARM): done
        statuses = [s.method for s in cloud.state.seen[before:]]
        assert "DELETE" in statuses, kind
        assert await provider.check(target) is False
        await provider.close()


@pytest.mark.parametrize(("kind", "mode", "permission"), [
    ("entra-group", "direct", "GroupMember.ReadWrite.All"),
    ("entra-group", "pim", "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"),
    ("entra-role", "direct", "RoleManagement.ReadWrite.Directory"),
    ("entra-role", "pim", "RoleAssignmentSchedule.ReadWrite.Directory"),
    ("azure-rbac", "direct", "Microsoft.Authorization/roleAssignments/write"),
    ("azure-rbac", "pim", "Microsoft.Authorization/roleAssignmentScheduleRequests/write"),
])
async def test_403_ends_the_grant_naming_the_missing_permission(
        cloud: MicrosoftCloud, kind: str, mode: str, permission: str) -> None:
    cloud.state.graph_permissions = ["User.Read.All"]
    cloud.state.arm_actions = ["Microsoft.Authorization/*/read"]
    provider = build_microsoft(cloud, kind, mode=mode)
    with pytest.raises(ProviderError) as failed:
        await provider.grant(make_target(grant=grant_for(cloud, kind)))
    assert failed.value.retryable is False
    assert permission in failed.value.message
    assert " 403 " in failed.value.message
    assert "permission" in failed.value.public
    await provider.close()


async def test_429_is_retried_after_its_retry_after(cloud: MicrosoftCloud) -> None:
    sleeps = Sleeps()
    provider = build_microsoft(cloud, "entra-group", sleep=sleeps)
    grant = grant_for(cloud, "entra-group")
    cloud.state.fail("graph", 429, "TooManyRequests", retry_after="7", method="POST")
    cloud.state.fail("graph", 503, "ServiceUnavailable", retry_after="2", method="POST")
    await provider.grant(make_target(grant=grant))
    assert sleeps.waits == [7.0, 2.0]
    assert len(cloud.state.members(grant["group_id"])) == 1
    await provider.close()


async def test_a_retry_after_beyond_the_timeout_is_left_to_the_job(
        cloud: MicrosoftCloud) -> None:
    sleeps = Sleeps()
    provider = build_microsoft(cloud, "azure-rbac", sleep=sleeps, timeout=10)
    cloud.state.fail("arm", 429, "TooManyRequests", retry_after="120", method="PUT")
    with pytest.raises(ProviderError) as failed:
        await provider.grant(make_target(grant=grant_for(cloud, "azure-rbac")))
    assert failed.value.retryable is True
    assert "120s" in failed.value.message and "10s timeout" in failed.value.message
    assert sleeps.waits == []  # it did not sit out two minutes inside a 10 s budget
    await provider.close()


async def test_a_token_that_expires_mid_run_is_renewed(cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "azure-rbac")
    target = make_target(grant=grant_for(cloud, "azure-rbac"))
    ref = await provider.grant(target)
    tokens = len(cloud.state.requests_to("login"))
    cloud.state.expire_tokens()  # both services now answer 401 to the cached tokens
    provider.people.forget(BOB)  # so Graph is asked too
    assert await provider.check(target) is True
    await provider.revoke(target, ref)
    assert await provider.check(target) is False
    assert len(cloud.state.requests_to("login")) == tokens + 2  # a fresh Graph and ARM token
    await provider.close()


async def test_a_wrong_secret_is_final_and_never_shown(cloud: MicrosoftCloud,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    provider = build_microsoft(cloud, "entra-group")
    cloud.state.secrets = {k: "rotated" for k in cloud.state.secrets}
    with pytest.raises(ProviderError) as failed:
        await provider.grant(make_target(grant=grant_for(cloud, "entra-group")))
    assert failed.value.retryable is False
    assert "AADSTS7000215" in failed.value.message
    secret = cloud.env["PIM_GRAPH_SECRET"]
    assert secret not in failed.value.message
    assert all(secret not in r.getMessage() for r in caplog.records)
    await provider.close()


async def test_tokens_and_secrets_never_reach_the_logs(cloud: MicrosoftCloud,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    provider = build_microsoft(cloud, "entra-role")
    target = make_target(grant=grant_for(cloud, "entra-role"))
    await provider.revoke(target, await provider.grant(target))
    await provider.close()
    secrets = [cloud.env["PIM_GRAPH_SECRET"], *cloud.state.tokens]
    assert cloud.state.tokens
    for record in caplog.records:
        assert not any(s in record.getMessage() for s in secrets), record.getMessage()


async def test_people_are_found_by_mail_and_cached_until_they_expire(
        cloud: MicrosoftCloud) -> None:
    guest = cloud.state.add_user("carol_contoso.com#EXT#@fabrikam.onmicrosoft.com",
                                 mail="carol@contoso.com")
    clock = FakeClock()
    provider = build_microsoft(cloud, "entra-group", clock=clock)
    grant = grant_for(cloud, "entra-group")
    target = make_target("Carol@Contoso.com", grant)
    ref = await provider.grant(target)
    assert cloud.state.members(grant["group_id"]) == {guest}
    lookups = len([s for s in cloud.state.requests_to("graph", "GET") if "/users" in s.path])
    assert lookups == 2  # by UPN (404), then by mail
    assert await provider.check(target) is True
    clock.advance(timedelta(minutes=5))
    await provider.revoke(target, ref)
    assert len([s for s in cloud.state.requests_to("graph", "GET")
                if "/users" in s.path]) == lookups  # cached
    clock.advance(timedelta(minutes=11))
    await provider.check(target)
    assert len([s for s in cloud.state.requests_to("graph", "GET")
                if "/users" in s.path]) == lookups + 2  # the cache entry expired
    await provider.close()


async def test_someone_unknown_to_entra_is_a_final_failure(cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "entra-group")
    with pytest.raises(ProviderError) as failed:
        await provider.grant(make_target("nobody@example.com", grant_for(cloud, "entra-group")))
    assert failed.value.retryable is False
    assert "nobody@example.com" in failed.value.public
    await provider.close()


async def test_azure_rbac_names_the_assignment_after_the_activation(
        cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "azure-rbac")
    target = make_target(grant=grant_for(cloud, "azure-rbac"))
    await provider.grant(target)
    await provider.grant(target)  # a retried grant: the same name, the same assignment
    [assignment] = cloud.state.arm_holders(RESOURCE_GROUP, CONTRIBUTOR)
    assert assignment.name == str(uuid.uuid5(NAMESPACE, ":".join(
        ("azure-rbac", target.activation_id, RESOURCE_GROUP, CONTRIBUTOR))))
    puts = cloud.state.requests_to("arm", "PUT")
    assert {p.body["properties"]["principalType"] for p in puts} == {"User"}
    assert puts[0].path.endswith("?api-version=2022-04-01")
    assert puts[0].body["properties"]["roleDefinitionId"] == (
        f"{RESOURCE_GROUP.rsplit('/resourceGroups', 1)[0]}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{CONTRIBUTOR}")
    await provider.close()


async def test_azure_rbac_leaves_an_assignment_someone_else_made(cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "azure-rbac")
    bob = cloud.state.user_by_upn(BOB)
    assert bob is not None
    theirs = cloud.state.assign_azure_role(bob.id, RESOURCE_GROUP, CONTRIBUTOR)
    target = make_target(grant=grant_for(cloud, "azure-rbac"))
    ref = await provider.grant(target)  # 409 RoleAssignmentExists: bob holds it already
    await provider.revoke(target, ref)
    assert cloud.state.arm_holders(RESOURCE_GROUP, CONTRIBUTOR) == [theirs]
    await provider.close()


@pytest.mark.parametrize("kind", ["entra-group", "entra-role", "azure-rbac"])
async def test_pim_mode_sets_the_activations_end_and_still_removes_it(
        cloud: MicrosoftCloud, kind: str) -> None:
    provider = build_microsoft(cloud, kind, mode="pim")
    target = make_target(grant=grant_for(cloud, kind))
    ref = await provider.grant(target)
    assert target.expires_at is not None
    recorded = MicrosoftRef.parse(ref)
    assert recorded is not None and recorded.expires == "2026-11-02T10:00:00Z"
    [assign] = cloud.state.schedule_requests
    body = assign.get("properties", assign)
    schedule = body["scheduleInfo"]
    assert schedule["startDateTime"] == "2026-11-02T09:00:00Z"
    assert schedule["expiration"]["endDateTime"] == "2026-11-02T10:00:00Z"
    assert schedule["expiration"]["type"].lower() == "afterdatetime"
    assert body.get("action", body.get("requestType")).lower() == "adminassign"
    assert target.activation_id in body["justification"]
    await provider.revoke(target, ref)  # pimbot removes it at the end too
    remove = cloud.state.schedule_requests[-1]
    assert remove.get("properties", remove).get(
        "action", remove.get("properties", {}).get("requestType")).lower() == "adminremove"
    assert await provider.check(target) is False
    await provider.close()


async def test_pim_access_entra_already_ended_is_revoked_without_fuss(
        cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "entra-role", mode="pim")
    target = make_target(grant={"role_definition_id": GLOBAL_ADMIN})
    ref = await provider.grant(target)
    cloud.state.role_assignments.clear()  # Entra ended the schedule at its expiration
    await provider.revoke(target, ref)  # 400 RoleAssignmentDoesNotExist: done
    await provider.close()


async def test_a_next_link_to_another_host_is_refused(cloud: MicrosoftCloud) -> None:
    provider = build_microsoft(cloud, "entra-group")
    with pytest.raises(ProviderError) as refused:
        await provider.graph.call("GET", "https://evil.example.com/v1.0/users",
                                  provider.budget())
    assert refused.value.retryable is False
    assert not [s for s in cloud.state.seen if s.service == "graph"]
    await provider.close()


# -- the four credentials, each through azure-identity against the fake token endpoint ------


async def _grants_with(cloud: MicrosoftCloud, **settings: object) -> None:
    provider = build_microsoft(cloud, "entra-group", client_secret_env=None, **settings)
    grant = grant_for(cloud, "entra-group")
    await provider.grant(make_target(grant=grant))
    assert len(cloud.state.members(grant["group_id"])) == 1
    await provider.close()


async def test_a_certificate_signs_the_client_assertion(cloud: MicrosoftCloud,
                                                        tmp_path: Path) -> None:
    from msfake.state import APP
    from msfake.tls import make_client_certificate

    pem = make_client_certificate(tmp_path)
    cloud.state.secrets.clear()
    cloud.state.certificates[APP] = pem.read_bytes().split(b"-----END PRIVATE KEY-----\n")[1]
    await _grants_with(cloud, certificate_path=str(pem))
    [token_request] = cloud.state.requests_to("login")
    assert "client_secret" not in token_request.body
    assert token_request.body["client_assertion_type"].endswith("jwt-bearer")


async def test_a_workload_identity_sends_the_federated_token(cloud: MicrosoftCloud,
                                                             tmp_path: Path) -> None:
    from msfake.state import APP

    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOi.federated.assertion")
    cloud.state.secrets.clear()
    cloud.state.federated[APP] = "eyJhbGciOi.federated.assertion"
    await _grants_with(cloud, workload_identity=True, federated_token_file=str(token_file))


async def test_a_managed_identity_gets_its_token_from_the_platform(
        cloud: MicrosoftCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    from msfake.login import IDENTITY_HEADER

    # App Service's managed identity: azure-identity reads these variables itself.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{cloud.authority}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    await _grants_with(cloud, managed_identity=True, client_id=None)
    assert [s for s in cloud.state.requests_to("login") if s.path.startswith("/msi/token")]


async def test_holders_are_those_exactly_at_the_configured_scope(cloud: MicrosoftCloud) -> None:
    """Drift's listing: an assignment at the subscription (inherited by the resource group)
    or at an administrative unit is not one at the grant's scope."""
    state = cloud.state
    bob = state.user_by_upn(BOB)
    assert bob is not None
    app = state.add_service_principal("deploy-pipeline")
    subscription = RESOURCE_GROUP.split("/resourceGroups")[0]
    state.assign_azure_role(bob.id, subscription, CONTRIBUTOR)  # above the scope
    state.assign_azure_role(app, RESOURCE_GROUP, CONTRIBUTOR, "ServicePrincipal")
    arm = build_microsoft(cloud, "azure-rbac")
    [holder] = await arm.holders(grant_for(cloud, "azure-rbac"))
    assert (holder.key, holder.kind.value, holder.name) == (app, "servicePrincipal",
                                                            "deploy-pipeline")
    state.assign_directory_role(bob.id, GLOBAL_ADMIN, "/administrativeUnits/"
                                "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
    mallory = state.add_user("mallory@example.com")
    state.assign_directory_role(mallory, GLOBAL_ADMIN, "/")
    roles = build_microsoft(cloud, "entra-role")
    [holder] = await roles.holders({"role_definition_id": GLOBAL_ADMIN})
    assert holder.key == mallory and holder.emails == frozenset({"mallory@example.com"})
    await roles.remove_holder({"role_definition_id": GLOBAL_ADMIN}, holder)
    assert not state.holds_directory_role(mallory, GLOBAL_ADMIN)
    assert state.holds_directory_role(bob.id, GLOBAL_ADMIN,
                                      "/administrativeUnits/0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
    await arm.close()
    await roles.close()
