"""Live grants a policy change affects: listed by ``policy plan``, ended by ``apply``.

A grant is recorded with the provider and parameters it was made with. When the policy
removes its role, moves the role to another provider or changes its ``grant:`` parameters,
the grant no longer matches the policy: ``apply`` (and ``run``, which applies at start) ends
the requests that hold it and revokes it with the *recorded* parameters. A provider that
still backs a grant not yet revoked cannot be removed: its revoke would have nowhere to go.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pimbot.domain.model import Policy
from pimbot.store.tables import GrantRow, GrantState

LIVE = (GrantState.GRANTING.value, GrantState.GRANTED.value)
NOT_REVOKED = (*LIVE, GrantState.REVOKING.value)


@dataclass(frozen=True)
class AffectedGrant:
    grant_id: str
    email: str
    role: str
    provider: str
    why: str

    @property
    def line(self) -> str:
        return f"{self.email} {self.role} (grant {self.grant_id} on {self.provider}): {self.why}"


class ProviderStillInUse(Exception):
    """The policy removes a provider that still backs grants not yet revoked."""

    def __init__(self, grants: list[AffectedGrant]) -> None:
        self.grants = grants
        names = ", ".join(sorted({g.provider for g in grants}))
        lines = "\n".join(f"  {g.line}" for g in grants)
        super().__init__(
            f"providers.{names}: still backs {len(grants)} grant(s) not yet revoked; end them "
            f"first (deactivate, unassign) or keep the provider until they have ended:\n{lines}")


def mismatch(grant: GrantRow, policy: Policy) -> str | None:
    """Why ``grant`` no longer matches ``policy`` (None: it still does)."""
    role = policy.roles.get(grant.role)
    if role is None:
        return f"role {grant.role} was removed from the policy"
    if role.provider != grant.provider:
        return f"role {grant.role} moved from provider {grant.provider} to {role.provider}"
    if dict(role.grant) != dict(grant.params):
        return f"the grant parameters of {grant.role} changed"
    return None


async def affected_grants(session: AsyncSession, policy: Policy) -> list[AffectedGrant]:
    """Live grants that ``policy`` no longer matches (``apply`` revokes them)."""
    rows = (await session.scalars(select(GrantRow).where(GrantRow.state.in_(LIVE))
                                  .order_by(GrantRow.created_at))).all()
    found = []
    for row in rows:
        why = mismatch(row, policy)
        if why is not None:
            found.append(AffectedGrant(row.id, row.email, row.role, row.provider, why))
    return found


async def orphaned_by_provider_removal(session: AsyncSession,
                                       policy: Policy) -> list[AffectedGrant]:
    rows = (await session.scalars(select(GrantRow).where(
        GrantRow.state.in_(NOT_REVOKED), GrantRow.provider.not_in(list(policy.providers)))
        .order_by(GrantRow.created_at))).all()
    return [AffectedGrant(r.id, r.email, r.role, r.provider,
                          f"provider {r.provider} is removed from the policy") for r in rows]


async def refuse_provider_removal(session: AsyncSession, policy: Policy) -> None:
    orphaned = await orphaned_by_provider_removal(session, policy)
    if orphaned:
        raise ProviderStillInUse(orphaned)
