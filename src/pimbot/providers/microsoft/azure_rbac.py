"""``azure-rbac``: Azure role assignments at any scope (a management group, a subscription,
a resource group, a resource), by Azure Resource Manager.

``mode: direct`` PUTs a role assignment whose name is a UUID5 of the activation id, so a
retried grant finds what the first attempt made, and DELETEs that name at the end;
``principalType: User`` is always sent (ARM then need not look the principal up, which fails
for a user created moments ago). An assignment someone else made (another name) is left
alone: it is standing access, which drift reports. ``mode: pim`` (Entra ID P2) asks ARM's PIM
for an active assignment from the activation's start to its end (``AdminAssign``), so Azure
removes it at that end even if pimbot is down; pimbot still removes it (``AdminRemove``).
People are found in Entra ID by Microsoft Graph (``User.Read.All``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pimbot.ports import GrantTarget
from pimbot.providers.errors import ProviderError
from pimbot.providers.holders import Holder, HolderKind, ProbeFinding
from pimbot.providers.microsoft.api import Answer, Budget, Service
from pimbot.providers.microsoft.base import MicrosoftProvider
from pimbot.providers.microsoft.ids import role_definition_path
from pimbot.providers.microsoft.probe import GRAPH_NEEDS, arm_probe, graph_probe
from pimbot.providers.microsoft.refs import MicrosoftRef, Mode, iso_or_none, stable_name

log = logging.getLogger(__name__)

ASSIGNMENTS_VERSION = "2022-04-01"
SCHEDULES_VERSION = "2020-10-01"
WRITE = "Microsoft.Authorization/roleAssignments/write"
DELETE = "Microsoft.Authorization/roleAssignments/delete"
PIM_WRITE = "Microsoft.Authorization/roleAssignmentScheduleRequests/write"
_EXISTS, _MISSING = "RoleAssignmentExists", "RoleAssignmentDoesNotExist"
_KINDS = {"User": HolderKind.USER, "ServicePrincipal": HolderKind.SERVICE_PRINCIPAL,
          "Group": HolderKind.GROUP}


def _scope(grant: Mapping[str, Any]) -> str:
    return str(grant["scope"]).rstrip("/") or "/"


def _role(grant: Mapping[str, Any]) -> str:
    return str(grant["role_definition_id"]).lower()


def _base(scope: str) -> str:
    return "" if scope == "/" else scope


class AzureRbacProvider(MicrosoftProvider):
    kind = "azure-rbac"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arm = self.api(Service("Azure Resource Manager", self.settings.arm_url))

    def assignment_name(self, target: GrantTarget) -> str:
        return stable_name("azure-rbac", target.activation_id, _scope(target.grant),
                           _role(target.grant))

    async def grant(self, target: GrantTarget) -> str | None:
        budget = self.budget()
        person = await self.person(target, budget)
        scope, role = _scope(target.grant), _role(target.grant)
        definition = role_definition_path(scope, role)
        if self.mode is Mode.PIM:
            name = stable_name("azure-rbac-pim", target.activation_id, "assign")
            answer = await self._schedule(scope, name, {
                "principalId": person.id, "roleDefinitionId": definition,
                "requestType": "AdminAssign", "scheduleInfo": self.schedule(target, pascal=True),
                "justification": self.justification(target)}, budget)
            if not (answer.ok or answer.code == _EXISTS or await self._held(
                    target.grant, person.id, budget)):
                raise self.arm.failure(answer, f"assign role {role} at {scope} through PIM",
                                       permission=PIM_WRITE)
            log.info("%s: PIM assignment of %s at %s to %s until %s", self.name, role, scope,
                     target.email, iso_or_none(target.expires_at))
            return MicrosoftRef(person.id, Mode.PIM, request=name,
                                expires=iso_or_none(target.expires_at)).encode()
        name = self.assignment_name(target)
        answer = await self.arm.call(
            "PUT", self._assignment_path(scope, name), budget,
            params={"api-version": ASSIGNMENTS_VERSION},
            body={"properties": {"roleDefinitionId": definition, "principalId": person.id,
                                 "principalType": "User",
                                 "description": self.justification(target)}})
        if answer.status == 409 and answer.code == _EXISTS:
            log.warning("%s: %s already holds %s at %s through an assignment pimbot did not "
                        "make; it stays (drift reports it)", self.name, target.email, role,
                        scope)
            return MicrosoftRef(person.id, Mode.DIRECT, assignment=name, adopted=True).encode()
        if not answer.ok:
            raise self.arm.failure(answer, f"assign role {role} at {scope}", permission=WRITE)
        log.info("%s: assigned %s at %s to %s (%s)", self.name, role, scope, target.email, name)
        return MicrosoftRef(person.id, Mode.DIRECT, assignment=name).encode()

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        budget = self.budget()
        recorded = MicrosoftRef.parse(ref)
        mode = recorded.mode if recorded is not None else self.mode
        scope = _scope(target.grant)
        if mode is Mode.PIM:
            principal = await self.principal(target, ref, budget)
            await self._pim_remove(target.grant, principal, budget,
                                   stable_name("azure-rbac-pim", target.activation_id,
                                               "remove", str(self.now().timestamp())))
        else:
            name = recorded.assignment if recorded is not None and recorded.assignment else \
                self.assignment_name(target)
            await self._delete(scope, name, budget)
        log.info("%s: removed %s at %s from %s", self.name, _role(target.grant), scope,
                 target.email)

    async def check(self, target: GrantTarget) -> bool:
        budget = self.budget()
        person = await self.person(target, budget)
        return await self._held(target.grant, person.id, budget)

    async def holders(self, grant: Mapping[str, Any]) -> list[Holder]:
        budget = self.budget()
        found = [item async for item in self._listing(grant, budget, "atScope()")]
        try:
            names = await self.people.describe(
                [str(i["properties"].get("principalId", "")) for i in found], budget)
        except ProviderError as exc:  # names are a courtesy: the ids still identify them
            log.info("%s: holders left unnamed: %s", self.name, exc.message)
            names = {}
        holders = []
        for item in found:
            properties = item["properties"]
            key = str(properties.get("principalId", ""))
            named = names.get(key)
            holders.append(Holder(
                key, named.name if named else key,
                _KINDS.get(str(properties.get("principalType", "")), HolderKind.OTHER),
                named.emails if named else frozenset(), ref=str(item.get("name", ""))))
        return holders

    async def remove_holder(self, grant: Mapping[str, Any], holder: Holder) -> None:
        budget = self.budget()
        if holder.ref:
            await self._delete(_scope(grant), holder.ref, budget)
        if self.mode is Mode.PIM and await self._held(grant, holder.key, budget):
            await self._pim_remove(grant, holder.key, budget, stable_name(
                "azure-rbac-pim", "drift", holder.key, str(self.now().timestamp())))

    async def probe(self, grants: Sequence[Mapping[str, Any]]) -> list[ProbeFinding]:
        findings = await graph_probe(self, GRAPH_NEEDS["azure-rbac"], [])
        scopes = sorted({_scope(g) for g in grants if "scope" in g})
        return findings + await arm_probe(self, self.arm, scopes)

    # -- ARM --------------------------------------------------------------------------------

    def _assignment_path(self, scope: str, name: str) -> str:
        return f"{_base(scope)}/providers/Microsoft.Authorization/roleAssignments/{name}"

    async def _listing(self, grant: Mapping[str, Any], budget: Budget,
                       where: str) -> AsyncIterator[dict[str, Any]]:
        """Assignments of the grant's role exactly at its scope (ARM lists those above and
        below it too)."""
        scope, role = _scope(grant), _role(grant)
        async for item in self.arm.pages(
                f"{_base(scope)}/providers/Microsoft.Authorization/roleAssignments", budget,
                params={"api-version": ASSIGNMENTS_VERSION, "$filter": where}):
            properties = item.get("properties")
            if not isinstance(properties, dict):
                continue
            at = str(properties.get("scope", "")).rstrip("/") or "/"
            definition = str(properties.get("roleDefinitionId", "")).lower()
            if at.lower() == scope.lower() and definition.rsplit("/", 1)[-1] == role:
                yield item

    async def _held(self, grant: Mapping[str, Any], principal: str, budget: Budget) -> bool:
        async for _ in self._listing(grant, budget, f"principalId eq '{principal}'"):
            return True
        return False

    async def _delete(self, scope: str, name: str, budget: Budget) -> None:
        answer = await self.arm.call("DELETE", self._assignment_path(scope, name), budget,
                                     params={"api-version": ASSIGNMENTS_VERSION})
        if not (answer.ok or answer.status == 404):  # 204: there was none; 404: gone
            raise self.arm.failure(answer, f"delete role assignment {name}", permission=DELETE)

    async def pim_extend(self, target: GrantTarget, principal: str, budget: Budget) -> None:
        scope, role = _scope(target.grant), _role(target.grant)
        end = iso_or_none(target.expires_at) or "none"
        properties = {"principalId": principal,
                      "roleDefinitionId": role_definition_path(scope, role),
                      "justification": self.justification(target)}
        answer = await self._schedule(scope, stable_name(
            "azure-rbac-pim", target.activation_id, "extend", end), {
            **properties, "requestType": "AdminExtend",
            "scheduleInfo": self.schedule(target, pascal=True)}, budget)
        if answer.code == _MISSING:  # PIM ended it already (at the end first sent)
            answer = await self._schedule(scope, stable_name(
                "azure-rbac-pim", target.activation_id, "assign", end), {
                **properties, "requestType": "AdminAssign",
                "scheduleInfo": self.schedule(replace(target, starts_at=None), pascal=True)},
                budget)
        if not (answer.ok or answer.code == _EXISTS):
            raise self.arm.failure(answer, f"extend role {role} at {scope} through PIM",
                                   permission=PIM_WRITE)

    async def _pim_remove(self, grant: Mapping[str, Any], principal: str, budget: Budget,
                          name: str) -> None:
        scope = _scope(grant)
        answer = await self._schedule(scope, name, {
            "principalId": principal, "roleDefinitionId": role_definition_path(
                scope, _role(grant)), "requestType": "AdminRemove"}, budget)
        if answer.ok or answer.code == _MISSING or answer.status == 404:
            return
        if not await self._held(grant, principal, budget):
            return  # whatever it said, nothing is held any more
        raise self.arm.failure(answer, f"remove role {_role(grant)} at {scope} through PIM",
                               permission=PIM_WRITE)

    async def _schedule(self, scope: str, name: str, properties: dict[str, Any],
                        budget: Budget) -> Answer:
        return await self.arm.call(
            "PUT", f"{_base(scope)}/providers/Microsoft.Authorization/"
                   f"roleAssignmentScheduleRequests/{name}", budget,
            params={"api-version": SCHEDULES_VERSION}, body={"properties": properties})
