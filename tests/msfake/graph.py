"""Microsoft Graph v1.0, the parts pimbot calls: users by UPN or mail, group members,
directory role assignments, and PIM's schedule requests for directory roles and groups."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from msfake.common import error, json_body, page
from msfake.state import CloudState, GraphRoleAssignment, new_guid, pim_key, scheduled_end

GROUP_WRITE = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
USER_READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
             "Directory.ReadWrite.All")
ROLE_WRITE = ("RoleManagement.ReadWrite.Directory",)
ROLE_SCHEDULE_WRITE = ("RoleAssignmentSchedule.ReadWrite.Directory",
                       "RoleManagement.ReadWrite.Directory")
GROUP_SCHEDULE_WRITE = ("PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
                        "PrivilegedAccess.ReadWrite.AzureADGroup")
_EQ = re.compile(r"(\w+) eq '((?:[^']|'')*)'")


def _guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _filters(request: web.Request) -> dict[str, str]:
    text = request.query.get("$filter", "")
    return {m.group(1): m.group(2).replace("''", "'") for m in _EQ.finditer(text)}


def _select(request: web.Request) -> list[str] | None:
    text = request.query.get("$select")
    return [s.strip() for s in text.split(",")] if text else None


class Graph:
    def __init__(self, state: CloudState) -> None:
        self.state = state
        self.url = ""  # https://127.0.0.1:PORT, set when the site starts

    def _context(self, what: str) -> str:
        return f"{self.url}/v1.0/$metadata#{what}"

    def _denied(self, accepted: tuple[str, ...]) -> web.Response | None:
        if any(p in self.state.graph_permissions for p in accepted):
            return None
        return error(403, "Authorization_RequestDenied",
                     "Insufficient privileges to complete the operation.")

    def _not_found(self, key: str) -> web.Response:
        return error(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist or one "
                     "of its queried reference-property objects are not present.")

    # -- users -----------------------------------------------------------------------------

    async def user(self, request: web.Request) -> web.Response:
        if (denied := self._denied(USER_READ)) is not None:
            return denied
        key = request.match_info["key"]
        found = self.state.objects.get(key) or self.state.user_by_upn(key)
        if found is None or found.kind != "user":
            return self._not_found(key)
        body = {"@odata.context": self._context("users/$entity"), **found.shape(
            _select(request))}
        body.pop("@odata.type", None)
        return web.json_response(body)

    async def users(self, request: web.Request) -> web.Response:
        if (denied := self._denied(USER_READ)) is not None:
            return denied
        wanted = _filters(request)
        found = [o for o in self.state.objects.values() if o.kind == "user" and all(
            (getattr(o, {"mail": "mail", "userPrincipalName": "upn"}.get(k, k), "") or ""
             ).lower() == v.lower() for k, v in wanted.items())]
        values = [{k: v for k, v in o.shape(_select(request)).items() if k != "@odata.type"}
                  for o in found]
        return web.json_response({"@odata.context": self._context("users"), "value": values})

    async def by_ids(self, request: web.Request) -> web.Response:
        if (denied := self._denied(("Directory.Read.All", *USER_READ))) is not None:
            return denied
        body = await json_body(request)
        types = body.get("types") or ["user", "servicePrincipal", "group"]
        found = [self.state.objects[i].shape() for i in body.get("ids") or []
                 if i in self.state.objects and self.state.objects[i].kind in types]
        return web.json_response({"@odata.context": self._context("directoryObjects"),
                                  "value": found})

    async def role_definition(self, request: web.Request) -> web.Response:
        key = request.match_info["id"]
        if not _guid(key):
            return error(400, "Request_BadRequest", f"Invalid object identifier '{key}'.")
        if key not in self.state.role_definitions:
            return self._not_found(key)
        return web.json_response({"@odata.context": self._context(
            "roleManagement/directory/roleDefinitions/$entity"), "id": key,
            "displayName": self.state.role_definitions[key], "isBuiltIn": True,
            "isEnabled": True, "templateId": key})

    # -- groups ----------------------------------------------------------------------------

    async def group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group"]
        if group_id not in self.state.groups:
            return self._not_found(group_id)
        shape = self.state.objects[group_id].shape(_select(request))
        shape.pop("@odata.type", None)
        return web.json_response({"@odata.context": self._context("groups/$entity"), **shape})

    async def members(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group"]
        if group_id not in self.state.groups:
            return self._not_found(group_id)
        members = [self.state.objects[m].shape(_select(request))
                   for m in sorted(self.state.groups[group_id])]
        chunk, link = page(request, members, self.state.page_size)
        body: dict[str, Any] = {"@odata.context": self._context("directoryObjects"),
                                "value": chunk}
        if link:
            body["@odata.nextLink"] = link
        return web.json_response(body)

    async def add_member(self, request: web.Request) -> web.Response:
        if (denied := self._denied(GROUP_WRITE)) is not None:
            return denied
        group_id = request.match_info["group"]
        body = await json_body(request)
        ref = str(body.get("@odata.id", ""))
        member = ref.rsplit("/", 1)[-1]
        if not ref.startswith(f"{self.url}/v1.0/directoryObjects/") or not _guid(member):
            return error(400, "Request_BadRequest", f"Invalid URL format specified in "
                         f"@odata.bind for members: {ref}")
        if group_id not in self.state.groups:
            return self._not_found(group_id)
        if member not in self.state.objects:
            return self._not_found(member)
        if member in self.state.groups[group_id]:
            return error(400, "Request_BadRequest", "One or more added object references "
                         "already exist for the following modified properties: 'members'.")
        self.state.groups[group_id].add(member)
        return web.Response(status=204)

    async def remove_member(self, request: web.Request) -> web.Response:
        if (denied := self._denied(GROUP_WRITE)) is not None:
            return denied
        group_id, member = request.match_info["group"], request.match_info["member"]
        if member not in self.state.groups.get(group_id, set()):
            return self._not_found(member)
        self.state.groups[group_id].discard(member)
        return web.Response(status=204)

    # -- directory role assignments -----------------------------------------------------------

    def _assignment_shape(self, a: GraphRoleAssignment, expand: bool) -> dict[str, Any]:
        shape = a.shape()
        if expand and a.principal_id in self.state.objects:
            shape["principal"] = self.state.objects[a.principal_id].shape()
        return shape

    async def role_assignments(self, request: web.Request) -> web.Response:
        wanted = _filters(request)
        found = [a for a in self.state.role_assignments.values() if all(
            str(a.shape().get(k, "")) == v for k, v in wanted.items())]
        expand = request.query.get("$expand") == "principal"
        values = [self._assignment_shape(a, expand) for a in found]
        chunk, link = page(request, values, self.state.page_size)
        body: dict[str, Any] = {"@odata.context": self._context(
            "roleManagement/directory/roleAssignments"), "value": chunk}
        if link:
            body["@odata.nextLink"] = link
        return web.json_response(body)

    async def create_role_assignment(self, request: web.Request) -> web.Response:
        if (denied := self._denied(ROLE_WRITE)) is not None:
            return denied
        body = await json_body(request)
        problem = self._role_body_problem(body)
        if problem is not None:
            return problem
        role, principal = body["roleDefinitionId"], body["principalId"]
        scope = body.get("directoryScopeId", "/")
        if self.state.holds_directory_role(principal, role, scope):
            return error(400, "Request_BadRequest", "A conflicting object with one or more of "
                         "the specified property values is present in the directory.")
        assignment = GraphRoleAssignment(new_guid(), role, principal, scope)
        self.state.role_assignments[assignment.id] = assignment
        return web.json_response({"@odata.context": self._context(
            "roleManagement/directory/roleAssignments/$entity"), **assignment.shape()},
            status=201)

    def _role_body_problem(self, body: dict[str, Any]) -> web.Response | None:
        for key in ("roleDefinitionId", "principalId"):
            if not _guid(str(body.get(key, ""))):
                return error(400, "Request_BadRequest", f"Invalid value specified for property "
                             f"'{key}' of resource 'UnifiedRoleAssignment'.")
        if body["principalId"] not in self.state.objects:
            return self._not_found(body["principalId"])
        return None

    async def delete_role_assignment(self, request: web.Request) -> web.Response:
        if (denied := self._denied(ROLE_WRITE)) is not None:
            return denied
        key = request.match_info["id"]
        if self.state.role_assignments.pop(key, None) is None:
            return self._not_found(key)
        return web.Response(status=204)

    # -- PIM: schedule requests ------------------------------------------------------------

    async def role_schedule_request(self, request: web.Request) -> web.Response:
        if (denied := self._denied(ROLE_SCHEDULE_WRITE)) is not None:
            return denied
        body = await json_body(request)
        problem = self._role_body_problem(body) or _schedule_problem(body)
        if problem is not None:
            return problem
        role, principal = body["roleDefinitionId"], body["principalId"]
        scope = body.get("directoryScopeId", "/")
        held = [a for a in self.state.role_assignments.values() if (
            a.principal_id, a.role_definition_id, a.directory_scope_id) == (principal, role,
                                                                             scope)]
        key = pim_key("role", principal, role, scope)
        if body["action"] == "adminAssign":
            if held:
                return error(400, "RoleAssignmentExists", "The Role assignment already exists.")
            assignment = GraphRoleAssignment(new_guid(), role, principal, scope)
            self.state.role_assignments[assignment.id] = assignment
            self.state.pim_ends[key] = scheduled_end(body.get("scheduleInfo"))
            status = "Provisioned"
        elif body["action"] == "adminExtend":
            if not held or key not in self.state.pim_ends:
                return error(400, "RoleAssignmentDoesNotExist",
                             "The Role assignment does not exist.")
            self.state.pim_ends[key] = scheduled_end(body.get("scheduleInfo"))
            status = "Provisioned"
        else:
            if not held:
                return error(400, "RoleAssignmentDoesNotExist",
                             "The Role assignment does not exist.")
            for a in held:
                del self.state.role_assignments[a.id]
            self.state.pim_ends.pop(key, None)
            status = "Revoked"
        return self._schedule_answer("roleManagement/directory/roleAssignmentScheduleRequests",
                                     body, status, kind="role")

    async def group_schedule_request(self, request: web.Request) -> web.Response:
        if (denied := self._denied(GROUP_SCHEDULE_WRITE)) is not None:
            return denied
        body = await json_body(request)
        group, principal = str(body.get("groupId", "")), str(body.get("principalId", ""))
        if body.get("accessId") not in ("member", "owner"):
            return error(400, "InvalidRequest", "The accessId must be member or owner.")
        if group not in self.state.groups:
            return self._not_found(group)
        if principal not in self.state.objects:
            return self._not_found(principal)
        if (problem := _schedule_problem(body)) is not None:
            return problem
        members = self.state.groups[group]
        key = pim_key("group", group, principal)
        if body["action"] == "adminAssign":
            if principal in members:
                return error(400, "RoleAssignmentExists", "The Role assignment already exists.")
            members.add(principal)
            self.state.pim_ends[key] = scheduled_end(body.get("scheduleInfo"))
            status = "Provisioned"
        elif body["action"] == "adminExtend":
            if principal not in members or key not in self.state.pim_ends:
                return error(400, "RoleAssignmentDoesNotExist",
                             "The Role assignment does not exist.")
            self.state.pim_ends[key] = scheduled_end(body.get("scheduleInfo"))
            status = "Provisioned"
        else:
            if principal not in members:
                return error(400, "RoleAssignmentDoesNotExist",
                             "The Role assignment does not exist.")
            members.discard(principal)
            self.state.pim_ends.pop(key, None)
            status = "Revoked"
        return self._schedule_answer(
            "identityGovernance/privilegedAccess/group/assignmentScheduleRequests", body, status,
            kind="group")

    def _schedule_answer(self, what: str, body: dict[str, Any], status: str,
                         kind: str) -> web.Response:
        answer = {"@odata.context": self._context(f"{what}/$entity"), "id": new_guid(),
                  "status": status, "createdDateTime": datetime.now(UTC).isoformat(),
                  "completedDateTime": datetime.now(UTC).isoformat(), "approvalId": None,
                  "customData": None, "isValidationOnly": False,
                  "targetScheduleId": new_guid(), "createdBy": {"application": None},
                  "ticketInfo": {"ticketNumber": None, "ticketSystem": None}, **body}
        self.state.schedule_requests.append({"service": "graph", "kind": kind, **answer})
        return web.json_response(answer, status=201)


def _schedule_problem(body: dict[str, Any]) -> web.Response | None:
    if body.get("action") not in ("adminAssign", "adminExtend", "adminRemove"):
        return error(400, "InvalidRequest", f"The action {body.get('action')} is not valid "
                     "for an application.")
    if body["action"] in ("adminAssign", "adminExtend"):
        expiration = (body.get("scheduleInfo") or {}).get("expiration") or {}
        if expiration.get("type") not in ("afterDateTime", "afterDuration", "noExpiration"):
            return error(400, "InvalidScheduleRequest", "The expiration type is not valid.")
    return None


def routes(graph: Graph) -> list[web.RouteDef]:
    v = "/v1.0"
    return [
        web.get(f"{v}/users", graph.users),
        web.get(f"{v}/users/{{key}}", graph.user),
        web.post(f"{v}/directoryObjects/getByIds", graph.by_ids),
        web.get(f"{v}/roleManagement/directory/roleDefinitions/{{id}}", graph.role_definition),
        web.get(f"{v}/groups/{{group}}", graph.group),
        web.get(f"{v}/groups/{{group}}/members", graph.members),
        web.post(f"{v}/groups/{{group}}/members/$ref", graph.add_member),
        web.delete(f"{v}/groups/{{group}}/members/{{member}}/$ref", graph.remove_member),
        web.get(f"{v}/roleManagement/directory/roleAssignments", graph.role_assignments),
        web.post(f"{v}/roleManagement/directory/roleAssignments", graph.create_role_assignment),
        web.delete(f"{v}/roleManagement/directory/roleAssignments/{{id}}",
                   graph.delete_role_assignment),
        web.post(f"{v}/roleManagement/directory/roleAssignmentScheduleRequests",
                 graph.role_schedule_request),
        web.post(f"{v}/identityGovernance/privilegedAccess/group/assignmentScheduleRequests",
                 graph.group_schedule_request),
    ]
