"""``entra-group``: membership of an Entra ID group, by Microsoft Graph.

``mode: direct`` adds and removes the person as a member (``members/$ref``): PIM for groups
on tenants without Entra ID P2. ``mode: pim`` asks Entra PIM for an active assignment of the
group's membership (or ownership, ``access: owner``) from the activation's start to its end
(``adminAssign``), so Entra removes it at that end even if pimbot is down; pimbot still
removes it at the end itself (``adminRemove``). A membership that was already there when
pimbot granted is adopted (Graph cannot tell it from one a retried grant made) and removed
at the end; holders pimbot did not grant are drift.
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

MEMBERS_WRITE = "GroupMember.ReadWrite.All"
GROUP_PIM_WRITE = "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"
_SCHEDULES = "/v1.0/identityGovernance/privilegedAccess/group/assignmentScheduleRequests"
_ALREADY_MEMBER = "already exist"
_EXISTS, _MISSING = "RoleAssignmentExists", "RoleAssignmentDoesNotExist"


def _group(grant: Mapping[str, Any]) -> str:
    return str(grant["group_id"])


class EntraGroupProvider(MicrosoftProvider):
    kind = "entra-group"

    def _permission(self) -> str:
        return GROUP_PIM_WRITE if self.mode is Mode.PIM else MEMBERS_WRITE

    async def grant(self, target: GrantTarget) -> str | None:
        budget = self.budget()
        person = await self.person(target, budget)
        group = _group(target.grant)
        if self.mode is Mode.PIM:
            answer = await self._schedule(target, person.id, "adminAssign", budget)
            if answer.ok or answer.code == _EXISTS:
                request = str((answer.body or {}).get("id", "")) if answer.ok else ""
                log.info("%s: PIM assignment of group %s to %s until %s", self.name, group,
                         target.email, iso_or_none(target.expires_at))
                return MicrosoftRef(person.id, Mode.PIM, request=request,
                                    expires=iso_or_none(target.expires_at),
                                    adopted=not answer.ok).encode()
            raise self.graph.failure(answer, f"assign group {group} through PIM",
                                     permission=GROUP_PIM_WRITE)
        answer = await self.graph.call(
            "POST", f"/v1.0/groups/{group}/members/$ref", budget,
            body={"@odata.id": f"{self.settings.graph_url}/v1.0/directoryObjects/{person.id}"})
        adopted = answer.status == 400 and _ALREADY_MEMBER in answer.message
        if not (answer.ok or adopted):
            raise self.graph.failure(answer, f"add {target.email} to group {group}",
                                     permission=MEMBERS_WRITE)
        log.info("%s: added %s to group %s%s", self.name, target.email, group,
                 " (already a member)" if adopted else "")
        return MicrosoftRef(person.id, Mode.DIRECT, adopted=adopted).encode()

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        budget = self.budget()
        recorded = MicrosoftRef.parse(ref)
        principal = await self.principal(target, ref, budget)
        mode = recorded.mode if recorded is not None else self.mode
        await self._remove(_group(target.grant), principal, mode, budget, target)
        log.info("%s: removed %s from group %s", self.name, target.email, _group(target.grant))

    async def check(self, target: GrantTarget) -> bool:
        budget = self.budget()
        principal = (await self.person(target, budget)).id
        async for member in self.graph.pages(f"/v1.0/groups/{_group(target.grant)}/members",
                                             budget, params={"$select": "id"}):
            if member.get("id") == principal:
                return True
        return False

    async def holders(self, grant: Mapping[str, Any]) -> list[Holder]:
        budget = self.budget()
        return [holder_of(item) async for item in self.graph.pages(
            f"/v1.0/groups/{_group(grant)}/members", budget,
            params={"$select": "id,userPrincipalName,mail,displayName"})]

    async def remove_holder(self, grant: Mapping[str, Any], holder: Holder) -> None:
        budget = self.budget()
        # A member added by hand is a direct member, whatever the provider's mode.
        answer = await self._delete_member(_group(grant), holder.key, budget)
        if answer.ok or answer.status == 404:
            return
        if self.mode is Mode.PIM:
            await self._remove(_group(grant), holder.key, Mode.PIM, budget, None)
            return
        raise self.graph.failure(answer, f"remove {holder.name} from group {_group(grant)}",
                                 permission=MEMBERS_WRITE)

    async def probe(self, grants: Sequence[Mapping[str, Any]]) -> list[ProbeFinding]:
        needs = GRAPH_NEEDS["entra-group-pim" if self.mode is Mode.PIM else "entra-group"]
        return await graph_probe(self, needs, [
            (f"group {g['group_id']}", f"/v1.0/groups/{g['group_id']}")
            for g in grants if "group_id" in g])

    async def pim_extend(self, target: GrantTarget, principal: str, budget: Budget) -> None:
        group = _group(target.grant)
        answer = await self._schedule(target, principal, "adminExtend", budget)
        if answer.code == _MISSING:  # PIM ended it already (at the end first sent)
            answer = await self._schedule(replace(target, starts_at=None), principal,
                                          "adminAssign", budget)
        if not (answer.ok or answer.code == _EXISTS):
            raise self.graph.failure(answer, f"extend group {group} through PIM",
                                     permission=GROUP_PIM_WRITE)

    async def _remove(self, group: str, principal: str, mode: Mode, budget: Budget,
                      target: GrantTarget | None) -> None:
        if mode is Mode.PIM:
            answer = await self._schedule(target, principal, "adminRemove", budget,
                                          group=group)
            if answer.ok or answer.code == _MISSING or answer.status == 404:
                return
            raise self.graph.failure(answer, f"remove group {group} through PIM",
                                     permission=GROUP_PIM_WRITE)
        answer = await self._delete_member(group, principal, budget)
        if not (answer.ok or answer.status == 404):  # 404: not a member (any more)
            raise self.graph.failure(answer, f"remove a member of group {group}",
                                     permission=MEMBERS_WRITE)

    async def _delete_member(self, group: str, principal: str, budget: Budget) -> Answer:
        return await self.graph.call(
            "DELETE", f"/v1.0/groups/{group}/members/{principal}/$ref", budget)

    async def _schedule(self, target: GrantTarget | None, principal: str, action: str,
                        budget: Budget, *, group: str | None = None) -> Answer:
        grant = target.grant if target is not None else {}
        body: dict[str, Any] = {
            "accessId": str(grant.get("access", "member")), "principalId": principal,
            "groupId": group or _group(grant), "action": action,
            "justification": self.justification(target) if target else
            "pimbot: drift, not granted by pimbot"}
        if action in ("adminAssign", "adminExtend") and target is not None:
            body["scheduleInfo"] = self.schedule(target)
        return await self.graph.call("POST", _SCHEDULES, budget, body=body)
