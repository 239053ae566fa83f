"""What the fake Microsoft cloud knows: one tenant's directory, Azure role assignments, the
app registrations that may get tokens, the tokens issued, and the faults a test injects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

TENANT = "8f4b5a2c-1d3e-4f60-a7b8-9c0d1e2f3a4b"
APP = "2b7c9d1e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
SECRET = "fake-client-secret~0123456789"
SUBSCRIPTION = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"  # built-in role template ids
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"  # an Azure built-in role
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

# Graph application permissions a token carries (its ``roles`` claim), by default all of
# what the three providers need.
ALL_GRAPH_PERMISSIONS = (
    "User.Read.All",
    "GroupMember.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
)
ALL_ARM_ACTIONS = ("Microsoft.Authorization/*",)


def pim_key(*parts: str) -> str:
    """``role, principal, role id, scope`` / ``group, group id, principal`` /
    ``arm, scope, role guid, principal``."""
    return ":".join(p.lower() for p in parts)


def scheduled_end(schedule: dict[str, Any] | None) -> str | None:
    expiration = (schedule or {}).get("expiration") or {}
    return expiration.get("endDateTime") if str(expiration.get("type", "")).lower() == \
        "afterdatetime" else None


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass
class DirectoryObject:
    id: str
    kind: str  # user | servicePrincipal | group
    display_name: str
    upn: str = ""
    mail: str = ""

    def shape(self, select: list[str] | None = None) -> dict[str, Any]:
        """As Graph writes it: ``@odata.type`` plus the (selected) properties."""
        body: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{self.kind}", "id": self.id,
                                "displayName": self.display_name}
        if self.kind == "user":
            body.update(userPrincipalName=self.upn, mail=self.mail or None)
        elif self.kind == "servicePrincipal":
            body.update(appId=new_guid(), servicePrincipalType="Application")
        if select:
            body = {k: v for k, v in body.items() if k in select or k == "@odata.type"}
        return body


@dataclass
class GraphRoleAssignment:
    id: str
    role_definition_id: str
    principal_id: str
    directory_scope_id: str

    def shape(self) -> dict[str, Any]:
        return {"id": self.id, "roleDefinitionId": self.role_definition_id,
                "principalId": self.principal_id, "directoryScopeId": self.directory_scope_id}


@dataclass
class ArmAssignment:
    scope: str
    name: str
    role_definition_id: str  # the full id, /…/providers/Microsoft.Authorization/roleDefinitions/G
    principal_id: str
    principal_type: str

    @property
    def id(self) -> str:
        return f"{self.scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/" \
               f"{self.name}"

    def shape(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": "Microsoft.Authorization/roleAssignments", "name": self.name,
            "properties": {
                "roleDefinitionId": self.role_definition_id, "principalId": self.principal_id,
                "principalType": self.principal_type, "scope": self.scope, "condition": None,
                "conditionVersion": None, "createdOn": "2026-11-02T09:00:00.0000000Z",
                "updatedOn": "2026-11-02T09:00:00.0000000Z", "createdBy": APP, "updatedBy": APP,
                "delegatedManagedIdentityResourceId": None, "description": None,
            },
        }


@dataclass
class Fault:
    """The next ``times`` requests to ``service`` (matching method and path) get this."""

    service: str  # login | graph | arm
    status: int
    code: str
    message: str = "injected by the test"
    retry_after: str | None = None
    method: str | None = None
    path_contains: str | None = None
    times: int = 1

    def matches(self, service: str, method: str, path: str) -> bool:
        return (self.times > 0 and self.service == service
                and (self.method is None or self.method == method)
                and (self.path_contains is None or self.path_contains in path))


@dataclass
class Token:
    audience: str
    app: str
    expired: bool = False


@dataclass
class Seen:
    service: str
    method: str
    path: str  # with the query string
    body: Any


@dataclass
class CloudState:
    objects: dict[str, DirectoryObject] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)  # group id → member ids
    role_definitions: dict[str, str] = field(default_factory=lambda: {
        GLOBAL_ADMIN: "Global Administrator", USER_ADMIN: "User Administrator"})
    role_assignments: dict[str, GraphRoleAssignment] = field(default_factory=dict)
    arm_assignments: dict[str, ArmAssignment] = field(default_factory=dict)  # id.lower() →
    schedule_requests: list[dict[str, Any]] = field(default_factory=list)  # every PIM request
    # the end PIM enforces for each active assignment it made (None: no end), by pim_key()
    pim_ends: dict[str, str | None] = field(default_factory=dict)
    # app registrations: client id → secret; certificates (PEM of the public certificate);
    # federated assertions (workload identity: the token file's content)
    secrets: dict[str, str] = field(default_factory=lambda: {APP: SECRET})
    certificates: dict[str, bytes] = field(default_factory=dict)
    federated: dict[str, str] = field(default_factory=dict)
    graph_permissions: list[str] = field(default_factory=lambda: list(ALL_GRAPH_PERMISSIONS))
    arm_actions: list[str] = field(default_factory=lambda: list(ALL_ARM_ACTIONS))
    tokens: dict[str, Token] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    page_size: int = 2  # small, so every listing follows @odata.nextLink / nextLink

    # -- the directory ---------------------------------------------------------------------

    def add_user(self, upn: str, mail: str = "", name: str = "") -> str:
        user = DirectoryObject(new_guid(), "user", name or upn.split("@")[0], upn, mail)
        self.objects[user.id] = user
        return user.id

    def add_service_principal(self, name: str) -> str:
        sp = DirectoryObject(new_guid(), "servicePrincipal", name)
        self.objects[sp.id] = sp
        return sp.id

    def add_group(self, name: str) -> str:
        group = DirectoryObject(new_guid(), "group", name)
        self.objects[group.id] = group
        self.groups[group.id] = set()
        return group.id

    def user_by_upn(self, upn: str) -> DirectoryObject | None:
        return next((o for o in self.objects.values()
                     if o.kind == "user" and o.upn.lower() == upn.lower()), None)

    def members(self, group_id: str) -> set[str]:
        return self.groups.get(group_id, set())

    def holds_directory_role(self, principal: str, role: str, scope: str = "/") -> bool:
        return any(a.principal_id == principal and a.role_definition_id == role
                   and a.directory_scope_id == scope for a in self.role_assignments.values())

    def arm_holders(self, scope: str, role_guid: str) -> list[ArmAssignment]:
        return [a for a in self.arm_assignments.values()
                if a.scope.lower() == scope.lower()
                and a.role_definition_id.lower().endswith(role_guid.lower())]

    def assign_directory_role(self, principal: str, role: str, scope: str = "/") -> str:
        """A role assignment made by hand (in the Entra admin center, say)."""
        assignment = GraphRoleAssignment(new_guid(), role, principal, scope)
        self.role_assignments[assignment.id] = assignment
        return assignment.id

    def assign_azure_role(self, principal: str, scope: str, role_guid: str,
                          principal_type: str = "User") -> ArmAssignment:
        """An Azure role assignment made by hand (another name than pimbot's)."""
        prefix = "/".join(scope.split("/")[:3]) if scope.lower().startswith(
            "/subscriptions/") else ""
        assignment = ArmAssignment(scope, new_guid(), f"{prefix}/providers/Microsoft."
                                   f"Authorization/roleDefinitions/{role_guid}", principal,
                                   principal_type)
        self.arm_assignments[assignment.id.lower()] = assignment
        return assignment

    def pim_end(self, *parts: str) -> str | None:
        """The end PIM enforces for an assignment (``pim_key`` parts); KeyError if none."""
        return self.pim_ends[pim_key(*parts)]

    def pim_expire(self, *parts: str) -> None:
        """PIM reached the assignment's end: it is gone (the caller removes the access)."""
        del self.pim_ends[pim_key(*parts)]

    def requests_to(self, service: str, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.service == service
                and (method is None or s.method == method)]

    # -- faults ----------------------------------------------------------------------------

    def fail(self, service: str, status: int, code: str, **kwargs: Any) -> Fault:
        fault = Fault(service, status, code, **kwargs)
        self.faults.append(fault)
        return fault

    def take_fault(self, service: str, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(service, method, path):
                fault.times -= 1
                return fault
        return None

    def expire_tokens(self) -> None:
        """Every token issued so far is now past its lifetime (the services say 401)."""
        for token in self.tokens.values():
            token.expired = True
