"""``pimbot providers check`` for the Microsoft providers: sign in, read the application
permissions the Graph token carries (its ``roles`` claim), read each granted object, and ask
ARM what the app may do at each scope (``Microsoft.Authorization/permissions``). Nothing is
granted, and no token is ever shown."""

from __future__ import annotations

import base64
import fnmatch
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pimbot.providers.errors import ProviderError
from pimbot.providers.holders import ProbeFinding, ProbeOutcome

if TYPE_CHECKING:
    from pimbot.providers.microsoft.api import Api
    from pimbot.providers.microsoft.base import MicrosoftProvider

OK, PROBLEM, SKIPPED = ProbeOutcome.OK, ProbeOutcome.PROBLEM, ProbeOutcome.SKIPPED
ARM_VERSION = "2022-04-01"

_USERS = ("look up people by UPN or mail",
          ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"))
GRAPH_NEEDS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "entra-group": [_USERS, ("add and remove group members", (
        "GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"))],
    "entra-group-pim": [_USERS, ("assign groups through PIM", (
        "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
        "PrivilegedAccess.ReadWrite.AzureADGroup"))],
    "entra-role": [_USERS, ("assign directory roles", ("RoleManagement.ReadWrite.Directory",))],
    "entra-role-pim": [_USERS, ("assign directory roles through PIM", (
        "RoleAssignmentSchedule.ReadWrite.Directory", "RoleManagement.ReadWrite.Directory"))],
    "azure-rbac": [_USERS],
}
ARM_NEEDS = {
    "direct": ("Microsoft.Authorization/roleAssignments/write",
               "Microsoft.Authorization/roleAssignments/delete",
               "Microsoft.Authorization/roleAssignments/read"),
    "pim": ("Microsoft.Authorization/roleAssignmentScheduleRequests/write",
            "Microsoft.Authorization/roleAssignments/read"),
}


def token_roles(token: str) -> list[str] | None:
    """The ``roles`` claim of a JWT access token (application permissions), if readable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return [str(r) for r in roles] if isinstance(roles, list) else []


async def _token(provider: MicrosoftProvider, api: Api) -> tuple[str | None, ProbeFinding]:
    try:
        token = await provider.tokens.token(api.service.scope, provider.session())
    except ProviderError as exc:
        return None, ProbeFinding(PROBLEM, f"token for {api.service.name}", exc.message)
    return token, ProbeFinding(OK, f"token for {api.service.name}",
                               provider.settings.credential.describe())


async def graph_probe(provider: MicrosoftProvider, needs: list[tuple[str, tuple[str, ...]]],
                      reads: Sequence[tuple[str, str]]) -> list[ProbeFinding]:
    token, finding = await _token(provider, provider.graph)
    findings = [finding]
    if token is None:
        return findings
    roles = token_roles(token)
    for purpose, accepted in needs:
        if roles is None:
            findings.append(ProbeFinding(SKIPPED, f"permission to {purpose}",
                                         "the token's permissions are not readable"))
        elif any(r in roles for r in accepted):
            held = next(r for r in accepted if r in roles)
            findings.append(ProbeFinding(OK, f"permission to {purpose}", held))
        else:
            findings.append(ProbeFinding(PROBLEM, f"permission to {purpose}",
                                         f"grant the application permission {accepted[0]} "
                                         "(with admin consent)"))
    for what, path in reads:
        findings.append(await _read(provider.graph, provider, what, path, {"$select": "id"}))
    return findings


async def _read(api: Api, provider: MicrosoftProvider, what: str, path: str,
                params: dict[str, str]) -> ProbeFinding:
    try:
        answer = await api.call("GET", path, provider.budget(), params=params)
    except ProviderError as exc:
        return ProbeFinding(PROBLEM, what, exc.message)
    if answer.ok:
        return ProbeFinding(OK, what, "found")
    reason = f"{api.service.name} answered {answer.status} {answer.code}".rstrip()
    if answer.status == 404:
        reason += " (does it exist?)"
    return ProbeFinding(PROBLEM, what, reason)


def _allowed(action: str, permissions: list[dict[str, Any]]) -> bool:
    def matches(patterns: object) -> bool:
        return isinstance(patterns, list) and any(
            fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)
    return any(matches(p.get("actions")) and not matches(p.get("notActions"))
               for p in permissions)


async def arm_probe(provider: MicrosoftProvider, arm: Api,
                    scopes: Sequence[str]) -> list[ProbeFinding]:
    token, finding = await _token(provider, arm)
    findings = [finding]
    if token is None:
        return findings
    needed = ARM_NEEDS[provider.mode.value]
    for scope in scopes:
        path = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/permissions"
        try:
            permissions = [p async for p in arm.pages(path, provider.budget(),
                                                      params={"api-version": ARM_VERSION})]
        except ProviderError as exc:
            findings.append(ProbeFinding(PROBLEM, f"permissions at {scope}", exc.message))
            continue
        missing = [a for a in needed if not _allowed(a, permissions)]
        if missing:
            findings.append(ProbeFinding(PROBLEM, f"permissions at {scope}",
                                         "missing " + ", ".join(missing)))
        else:
            findings.append(ProbeFinding(OK, f"permissions at {scope}", ", ".join(needed)))
    return findings
