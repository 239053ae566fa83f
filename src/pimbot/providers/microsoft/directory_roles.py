"""``entra-role``: Entra ID directory role assignments, by Microsoft Graph, for the whole
tenant (``directory_scope_id: /``) or an administrative unit.

``mode: direct`` creates a role assignment and deletes it at the end. An assignment already
there is adopted (Graph cannot tell it from one a retried grant made) and deleted at the end.
``mode: pim`` (Entra ID P2) asks Entra PIM for an active assignment from the activation's start
to its end (``adminAssign``), so Entra's own audit shows it and Entra removes it at that end
even if pimbot is down; pimbot still removes it at the end (``adminRemove``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pimbot.ports import GrantTarget
from pimbot.providers.holders import Holder, ProbeFinding
from pimbot.providers.microsoft.api import Answer, Budget
from pimbot.providers.microsoft.base import MicrosoftProvider
from pimbot.providers.microsoft.people import holder_of
from pimbot.providers.microsoft.probe import GRAPH_NEEDS, graph_probe
from pimbot.providers.microsoft.refs import MicrosoftRef, Mode, iso_or_none

log = logging.getLogger(__name__)

ROLES_WRITE = "RoleManagement.ReadWrite.Directory"
ROLE_PIM_WRITE = "RoleAssignmentSchedule.ReadWrite.Directory"
_ASSIGNMENTS = "/v1.0/roleManagement/directory/roleAssignments"
_SCHEDULES = "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests"
_EXISTS, _MISSING = "RoleAssignmentExists", "RoleAssignmentDoesNotExist"


def _role(grant: Mapping[str, Any]) -> str:
    return str(grant["role_definition_id"])


def _scope(grant: Mapping[str, Any]) -> str:
    return str(grant.get("directory_scope_id", "/"))


class EntraRoleProvider(MicrosoftProvider):
    kind = "entra-role"

    async def grant(self, target: GrantTarget) -> str | None:
        budget = self.budget()
        person = await self.person(target, budget)
        role, scope = _role(target.grant), _scope(target.grant)
        if self.mode is Mode.PIM:
            answer = await self._schedule(target.grant, person.id, "adminAssign", budget,
                                          target)
            if not (answer.ok or answer.code == _EXISTS):
                raise self.graph.failure(answer, f"assign directory role {role} through PIM",
                                         permission=f"{ROLE_PIM_WRITE} (or {ROLES_WRITE})")
            log.info("%s: PIM assignment of role %s at %s to %s until %s", self.name, role,
                     scope, target.email, iso_or_none(target.expires_at))
            return MicrosoftRef(person.id, Mode.PIM,
                                request=str((answer.body or {}).get("id", "")) if answer.ok
                                else "", expires=iso_or_none(target.expires_at),
                                adopted=not answer.ok).encode()
        existing = await self._assignments(target.grant, budget, principal=person.id)
        if existing:
            log.info("%s: %s already holds role %s at %s; adopting it", self.name,
                     target.email, role, scope)
            return MicrosoftRef(person.id, Mode.DIRECT, assignment=existing[0],
                                adopted=True).encode()
        answer = await self.graph.call("POST", _ASSIGNMENTS, budget, body={
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment", "roleDefinitionId": role,
            "principalId": person.id, "directoryScopeId": scope})
        if not answer.ok:
            raise self.graph.failure(answer, f"assign directory role {role}",
                                     permission=ROLES_WRITE)
        assignment = str((answer.body or {}).get("id", ""))
        log.info("%s: assigned role %s at %s to %s (%s)", self.name, role, scope, target.email,
                 assignment)
        return MicrosoftRef(person.id, Mode.DIRECT, assignment=assignment).encode()

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        budget = self.budget()
        recorded = MicrosoftRef.parse(ref)
        principal = await self.principal(target, ref, budget)
        mode = recorded.mode if recorded is not None else self.mode
        if mode is Mode.PIM:
            await self._pim_remove(target.grant, principal, budget, target)
        else:
            ids = [recorded.assignment] if recorded is not None and recorded.assignment else \
                await self._assignments(target.grant, budget, principal=principal)
            for assignment in ids:
                await self._delete(assignment, budget)
        log.info("%s: removed role %s from %s", self.name, _role(target.grant), target.email)

    async def check(self, target: GrantTarget) -> bool:
        budget = self.budget()
        person = await self.person(target, budget)
        return bool(await self._assignments(target.grant, budget, principal=person.id))

    async def holders(self, grant: Mapping[str, Any]) -> list[Holder]:
        budget = self.budget()
        found: list[Holder] = []
        async for item in self.graph.pages(_ASSIGNMENTS, budget, params={
                "$filter": f"roleDefinitionId eq '{_role(grant)}'", "$expand": "principal"}):
            if item.get("directoryScopeId", "/") != _scope(grant):
                continue
            principal = item.get("principal")
            if isinstance(principal, dict):
                found.append(holder_of(principal, ref=str(item.get("id", ""))))
            else:
                key = str(item.get("principalId", ""))
                found.append(holder_of({"id": key}, ref=str(item.get("id", ""))))
        return found

    async def remove_holder(self, grant: Mapping[str, Any], holder: Holder) -> None:
        budget = self.budget()
        answer = await self.graph.call("DELETE", f"{_ASSIGNMENTS}/{holder.ref}", budget) \
            if holder.ref else None
        if answer is not None and (answer.ok or answer.status == 404):
            return
        if self.mode is Mode.PIM or answer is None:
            await self._pim_remove(grant, holder.key, budget, None)
            return
        raise self.graph.failure(answer, f"remove directory role {_role(grant)} from "
                                 f"{holder.name}", permission=ROLES_WRITE)

    async def probe(self, grants: Sequence[Mapping[str, Any]]) -> list[ProbeFinding]:
        needs = GRAPH_NEEDS["entra-role-pim" if self.mode is Mode.PIM else "entra-role"]
        roles = sorted({str(g["role_definition_id"]) for g in grants
                        if "role_definition_id" in g})
        return await graph_probe(self, needs, [
            (f"directory role {r}", f"/v1.0/roleManagement/directory/roleDefinitions/{r}")
            for r in roles])

    async def pim_extend(self, target: GrantTarget, principal: str, budget: Budget) -> None:
        role = _role(target.grant)
        answer = await self._schedule(target.grant, principal, "adminExtend", budget, target)
        if answer.code == _MISSING:  # PIM ended it already (at the end first sent)
            answer = await self._schedule(target.grant, principal, "adminAssign", budget,
                                          replace(target, starts_at=None))
        if not (answer.ok or answer.code == _EXISTS):
            raise self.graph.failure(answer, f"extend directory role {role} through PIM",
                                     permission=f"{ROLE_PIM_WRITE} (or {ROLES_WRITE})")

    async def _assignments(self, grant: Mapping[str, Any], budget: Budget, *,
                           principal: str) -> list[str]:
        """Ids of the principal's assignments of the role at the grant's scope."""
        found = []
        async for item in self.graph.pages(_ASSIGNMENTS, budget, params={
                "$filter": f"principalId eq '{principal}' and roleDefinitionId eq "
                           f"'{_role(grant)}'"}):
            if item.get("directoryScopeId", "/") == _scope(grant):
                found.append(str(item.get("id", "")))
        return found

    async def _delete(self, assignment: str, budget: Budget) -> None:
        answer = await self.graph.call("DELETE", f"{_ASSIGNMENTS}/{assignment}", budget)
        if not (answer.ok or answer.status == 404):  # 404: gone already
            raise self.graph.failure(answer, "delete a directory role assignment",
                                     permission=ROLES_WRITE)

    async def _pim_remove(self, grant: Mapping[str, Any], principal: str, budget: Budget,
                          target: GrantTarget | None) -> None:
        answer = await self._schedule(grant, principal, "adminRemove", budget, target)
        if not (answer.ok or answer.code == _MISSING or answer.status == 404):
            raise self.graph.failure(answer, f"remove directory role {_role(grant)} through "
                                     "PIM", permission=f"{ROLE_PIM_WRITE} (or {ROLES_WRITE})")

    async def _schedule(self, grant: Mapping[str, Any], principal: str, action: str,
                        budget: Budget, target: GrantTarget | None) -> Answer:
        body: dict[str, Any] = {
            "action": action, "principalId": principal, "roleDefinitionId": _role(grant),
            "directoryScopeId": _scope(grant),
            "justification": self.justification(target) if target else
            "pimbot: drift, not granted by pimbot"}
        if action in ("adminAssign", "adminExtend") and target is not None:
            body["scheduleInfo"] = self.schedule(target)
        return await self.graph.call("POST", _SCHEDULES, budget, body=body)
