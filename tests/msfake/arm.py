"""Azure Resource Manager, the parts pimbot calls: role assignments at any scope
(api-version 2022-04-01), PIM's role assignment schedule requests (2020-10-01), and the
caller's own permissions at a scope (what ``pimbot providers check`` reads)."""

from __future__ import annotations

import fnmatch
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from msfake.common import APP_KEY, error, json_body, page
from msfake.state import TENANT, ArmAssignment, CloudState, new_guid, pim_key, scheduled_end

ASSIGNMENTS_VERSION = "2022-04-01"
SCHEDULES_VERSION = "2020-10-01"
_PATH = re.compile(
    r"^(?P<scope>.*?)/providers/Microsoft\.Authorization/"
    r"(?P<kind>roleAssignments|roleAssignmentScheduleRequests|permissions)(?:/(?P<name>[^/]+))?$",
    re.IGNORECASE)
_ROLE_DEFINITION = re.compile(
    r"^(/subscriptions/[0-9a-f-]{36})?/providers/Microsoft\.Authorization/roleDefinitions/"
    r"(?P<guid>[0-9a-f-]{36})$", re.IGNORECASE)
_PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")


def _error(status: int, code: str, message: str) -> web.Response:
    return error(status, code, message, service="arm")


def _under(scope: str, other: str) -> bool:
    """Is ``other`` the scope itself or below it?"""
    a, b = scope.rstrip("/").lower(), other.rstrip("/").lower()
    return b == a or b.startswith(a + "/")


class Arm:
    def __init__(self, state: CloudState) -> None:
        self.state = state
        self.url = ""

    def _allowed(self, action: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), pattern.lower())
                   for pattern in self.state.arm_actions)

    def _denied(self, action: str, scope: str, app: str) -> web.Response | None:
        if self._allowed(action):
            return None
        return _error(403, "AuthorizationFailed", f"The client '{app}' with object id '{app}' "
                      f"does not have authorization to perform action '{action}' over scope "
                      f"'{scope}' or the scope is invalid. If access was recently granted, "
                      "please refresh your credentials.")

    async def dispatch(self, request: web.Request) -> web.Response:
        match = _PATH.match(request.path)
        if match is None:
            return _error(404, "InvalidResourceType", "The resource type could not be found.")
        scope = match["scope"] or "/"
        kind, name = match["kind"].lower(), match["name"]
        version = request.query.get("api-version")
        wanted = SCHEDULES_VERSION if kind == "roleassignmentschedulerequests" \
            else ASSIGNMENTS_VERSION
        if version != wanted:
            return _error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is "
                          f"invalid. The supported versions are '{wanted}'.")
        app = request.get(APP_KEY, "")
        if kind == "permissions":
            return web.json_response({"value": [{"actions": list(self.state.arm_actions),
                                                 "notActions": [], "dataActions": [],
                                                 "notDataActions": []}]})
        if kind == "roleassignmentschedulerequests" and request.method == "PUT" and name:
            return await self._schedule_request(request, scope, name, app)
        if kind == "roleassignments":
            if name is None and request.method == "GET":
                return self._list(request, scope)
            if name is not None:
                handler = {"PUT": self._put, "DELETE": self._delete, "GET": self._get}.get(
                    request.method)
                if handler is not None:
                    return await handler(request, scope, name, app)
        return _error(405, "MethodNotAllowed", "The requested method is not allowed.")

    def _key(self, scope: str, name: str) -> str:
        return f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/" \
               f"{name}".lower()

    def _properties_problem(self, properties: dict[str, Any]) -> web.Response | None:
        if not _ROLE_DEFINITION.match(str(properties.get("roleDefinitionId", ""))):
            return _error(400, "InvalidRoleDefinitionId", f"The role definition ID "
                          f"'{properties.get('roleDefinitionId')}' is not valid.")
        principal = str(properties.get("principalId", ""))
        if principal not in self.state.objects:
            return _error(400, "PrincipalNotFound", f"Principal {principal} does not exist in "
                          f"the directory {TENANT}. Check that you have the correct principal "
                          "ID.")
        return None

    async def _put(self, request: web.Request, scope: str, name: str, app: str) -> web.Response:
        if (denied := self._denied("Microsoft.Authorization/roleAssignments/write", scope,
                                   app)) is not None:
            return denied
        properties = (await json_body(request)).get("properties") or {}
        if (problem := self._properties_problem(properties)) is not None:
            return problem
        kind = properties.get("principalType")
        if kind is not None and kind not in _PRINCIPAL_TYPES:
            return _error(400, "InvalidPrincipalType", f"The principal type '{kind}' is not "
                          "valid.")
        new = ArmAssignment(scope, name, properties["roleDefinitionId"],
                            properties["principalId"], kind or "User")
        existing = self.state.arm_assignments.get(self._key(scope, name))
        if existing is not None:
            if (existing.role_definition_id.lower(), existing.principal_id) != (
                    new.role_definition_id.lower(), new.principal_id):
                return _error(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application "
                              "ID, principal ID, and scope are not allowed to be updated.")
            return web.json_response(existing.shape(), status=201)
        guid = _ROLE_DEFINITION.match(new.role_definition_id)
        assert guid is not None
        if any(a.principal_id == new.principal_id for a in self.state.arm_holders(
                scope, guid["guid"])):
            return _error(409, "RoleAssignmentExists", "The role assignment already exists.")
        self.state.arm_assignments[self._key(scope, name)] = new
        return web.json_response(new.shape(), status=201)

    async def _delete(self, request: web.Request, scope: str, name: str,
                      app: str) -> web.Response:
        if (denied := self._denied("Microsoft.Authorization/roleAssignments/delete", scope,
                                   app)) is not None:
            return denied
        gone = self.state.arm_assignments.pop(self._key(scope, name), None)
        if gone is None:
            return web.Response(status=204)
        return web.json_response(gone.shape(), status=200)

    async def _get(self, request: web.Request, scope: str, name: str, app: str) -> web.Response:
        found = self.state.arm_assignments.get(self._key(scope, name))
        if found is None:
            return _error(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not "
                          "found.")
        return web.json_response(found.shape())

    def _list(self, request: web.Request, scope: str) -> web.Response:
        text = request.query.get("$filter", "")
        found = list(self.state.arm_assignments.values())
        if text == "atScope()":
            found = [a for a in found if _under(a.scope, scope)]  # at or above the scope
        else:
            found = [a for a in found if _under(a.scope, scope) or _under(scope, a.scope)]
            principal = re.fullmatch(r"principalId eq '([0-9a-f-]+)'", text)
            if principal:
                found = [a for a in found if a.principal_id == principal[1]]
            elif text:
                return _error(400, "InvalidFilter", f"The filter '{text}' is not supported.")
        chunk, link = page(request, [a.shape() for a in found], self.state.page_size)
        body: dict[str, Any] = {"value": chunk}
        if link:
            body["nextLink"] = link
        return web.json_response(body)

    async def _schedule_request(self, request: web.Request, scope: str, name: str,
                                app: str) -> web.Response:
        if (denied := self._denied("Microsoft.Authorization/roleAssignmentScheduleRequests/"
                                   "write", scope, app)) is not None:
            return denied
        properties = (await json_body(request)).get("properties") or {}
        if (problem := self._properties_problem(properties)) is not None:
            return problem
        guid = _ROLE_DEFINITION.match(properties["roleDefinitionId"])
        assert guid is not None
        held = [a for a in self.state.arm_holders(scope, guid["guid"])
                if a.principal_id == properties["principalId"]]
        kind = properties.get("requestType")
        key = pim_key("arm", scope, guid["guid"], properties["principalId"])
        if kind in ("AdminAssign", "AdminExtend"):
            expiration = (properties.get("scheduleInfo") or {}).get("expiration") or {}
            if expiration.get("type") not in ("AfterDateTime", "AfterDuration", "NoExpiration"):
                return _error(400, "InvalidScheduleInfo", "The expiration type is not valid.")
        if kind == "AdminExtend":
            if not held or key not in self.state.pim_ends:
                return _error(400, "RoleAssignmentDoesNotExist", "The Role assignment does not "
                              "exist.")
            self.state.pim_ends[key] = scheduled_end(properties.get("scheduleInfo"))
            status = "Provisioned"
        elif kind == "AdminAssign":
            if held:
                return _error(400, "RoleAssignmentExists", "The Role assignment already "
                              "exists.")
            new = ArmAssignment(scope, new_guid(), properties["roleDefinitionId"],
                                properties["principalId"], "User")
            self.state.arm_assignments[self._key(scope, new.name)] = new
            self.state.pim_ends[key] = scheduled_end(properties.get("scheduleInfo"))
            status = "Provisioned"
        elif kind == "AdminRemove":
            if not held:
                return _error(400, "RoleAssignmentDoesNotExist", "The Role assignment does not "
                              "exist.")
            for a in held:
                del self.state.arm_assignments[self._key(a.scope, a.name)]
            self.state.pim_ends.pop(key, None)
            status = "Revoked"
        else:
            return _error(400, "InvalidRequestType", f"The request type {kind} is not valid.")
        answer = {"id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/"
                        f"roleAssignmentScheduleRequests/{name}",
                  "name": name, "type": "Microsoft.Authorization/RoleAssignmentScheduleRequests",
                  "properties": {**properties, "scope": scope, "status": status,
                                 "createdOn": datetime.now(UTC).isoformat(),
                                 "requestorId": app}}
        self.state.schedule_requests.append({"service": "arm", **answer})
        return web.json_response(answer, status=201)


def routes(arm: Arm) -> list[web.RouteDef]:
    return [web.route("*", "/{tail:.*}", arm.dispatch)]
