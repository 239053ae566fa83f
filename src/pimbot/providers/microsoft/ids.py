"""Well-formed Entra and Azure identifiers, checked before anything is sent (``policy
validate``): GUIDs, tenants, directory scopes and Azure Resource Manager scopes, and each
Microsoft provider's grant parameters (with the very rules its grants apply)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pimbot.providers.postgres_names import GrantProblem

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_DOMAIN = re.compile(r"(?=.{4,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                     r"[A-Za-z]{2,63}")
_NAME = r"[-\w.()]{1,90}"  # a management group or resource group name
_SEGMENT = r"[^/\s?#%]{1,260}"  # a resource type or name
_ARM_SCOPE = re.compile(
    rf"/providers/Microsoft\.Management/managementGroups/{_NAME}"
    rf"|/subscriptions/{_GUID.pattern}"
    rf"(?:/resourceGroups/{_NAME}"
    rf"(?:/providers/[A-Za-z][\w.]*(?:/{_SEGMENT}/{_SEGMENT})+)?)?",
    re.IGNORECASE)
_DIRECTORY_SCOPE = re.compile(rf"/|/administrativeUnits/{_GUID.pattern}|/{_GUID.pattern}")

GUID_EXAMPLE = "00000000-0000-0000-0000-000000000000"


def is_guid(value: object) -> bool:
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def tenant_problem(value: object) -> str | None:
    if isinstance(value, str) and (is_guid(value) or _DOMAIN.fullmatch(value)):
        return None
    return f"{value!r} is not a tenant id (a GUID, or a domain such as contoso.onmicrosoft.com)"


def guid_problem(value: object, what: str) -> str | None:
    return None if is_guid(value) else f"{value!r} is not a GUID ({what}, like {GUID_EXAMPLE})"


def arm_scope_problem(value: object) -> str | None:
    """An Azure scope: a management group, a subscription, a resource group or a resource."""
    if isinstance(value, str) and (value == "/" or _ARM_SCOPE.fullmatch(value)):
        return None
    return (f"{value!r} is not an Azure scope (/subscriptions/<id>, /subscriptions/<id>/"
            "resourceGroups/<name>, a resource id, or /providers/Microsoft.Management/"
            "managementGroups/<name>)")


def directory_scope_problem(value: object) -> str | None:
    if isinstance(value, str) and _DIRECTORY_SCOPE.fullmatch(value):
        return None
    return (f"{value!r} is not a directory scope (\"/\" for the whole tenant, or "
            "/administrativeUnits/<id>)")


def _required(grant: Mapping[str, Any], key: str) -> list[GrantProblem]:
    return [] if key in grant else [GrantProblem(key, "is required")]


def _unknown(grant: Mapping[str, Any], known: tuple[str, ...]) -> list[GrantProblem]:
    return [GrantProblem(str(key), f"is not a grant parameter of this provider (known: "
                         f"{', '.join(known)})") for key in grant if key not in known]


def entra_group_problems(grant: Mapping[str, Any]) -> list[GrantProblem]:
    known = ("group_id", "access")
    problems = _unknown(grant, known) + _required(grant, "group_id")
    if "group_id" in grant and (p := guid_problem(grant["group_id"], "the group's object id")):
        problems.append(GrantProblem("group_id", p))
    if grant.get("access", "member") not in ("member", "owner"):
        problems.append(GrantProblem("access", f"{grant['access']!r} is not member or owner"))
    return problems


def entra_role_problems(grant: Mapping[str, Any]) -> list[GrantProblem]:
    known = ("role_definition_id", "directory_scope_id")
    problems = _unknown(grant, known) + _required(grant, "role_definition_id")
    if "role_definition_id" in grant and (p := guid_problem(
            grant["role_definition_id"], "the directory role's template id")):
        problems.append(GrantProblem("role_definition_id", p))
    if (p := directory_scope_problem(grant.get("directory_scope_id", "/"))) is not None:
        problems.append(GrantProblem("directory_scope_id", p))
    return problems


def azure_rbac_problems(grant: Mapping[str, Any]) -> list[GrantProblem]:
    known = ("scope", "role_definition_id")
    problems = _unknown(grant, known) + _required(grant, "scope") + _required(
        grant, "role_definition_id")
    if "scope" in grant and (p := arm_scope_problem(grant["scope"])) is not None:
        problems.append(GrantProblem("scope", p))
    if "role_definition_id" in grant and (p := guid_problem(
            grant["role_definition_id"], "the Azure role definition's name")):
        problems.append(GrantProblem("role_definition_id", p))
    return problems


def role_definition_path(scope: str, role_definition_id: str) -> str:
    """The full role definition id ARM wants in a role assignment's body."""
    match = re.match(rf"/subscriptions/{_GUID.pattern}", scope, re.IGNORECASE)
    prefix = match.group(0) if match else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role_definition_id}"
