"""The postgres provider: a real ``GRANT role TO login`` on a PostgreSQL server via asyncpg.

Identifiers cannot be bound as query parameters, so every name is first checked against a
strict pattern and then double-quoted; values (names in catalog queries) are always bound.

A grant goes only to a login that is this person's alone: pimbot creates it and marks it as
theirs (its comment, see ``postgres_names``), and refuses a login that belongs to someone
else, that it did not create (unless the policy names it for this person in ``logins:``),
that is a superuser or pimbot's own user, that cannot log in, or that has members (whoever
is a member of it would inherit the grant).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from pimbot.ports import GrantTarget
from pimbot.providers import postgres_sql as sql
from pimbot.providers.drift import DriftMode
from pimbot.providers.errors import ProviderError
from pimbot.providers.holders import Holder, HolderKind, ProbeFinding, ProbeOutcome
from pimbot.providers.postgres_names import (
    ROLE_PATTERN,
    GrantRef,
    LoginNames,
    is_role_name,
    login_for,
    login_name_problem,
    login_template_errors,
    marker_owner,
    owner_marker,
    quote_ident,
    quote_literal,
)

__all__ = ["PostgresProvider", "login_for", "login_template_errors", "quote_ident"]

log = logging.getLogger(__name__)


class PostgresProvider:
    """Grants the role's ``grant: {role: NAME}`` PostgreSQL role to the person's own login."""

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        login: str = "{email_local}",
        logins: Mapping[str, str] | None = None,
        drift: DriftMode = DriftMode.ALERT,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.login_template = login
        self.logins = LoginNames(login, {k.lower(): v for k, v in (logins or {}).items()})
        self.drift = drift
        self._dsn = dsn
        self._timeout = timeout

    async def grant(self, target: GrantTarget) -> str | None:
        """Grant; the ref records the login and the role, which is what the revoke undoes."""
        role, login = self._role_of(target), self._login_of(target.email)
        email = target.email.strip().lower()
        if login == role:
            raise ProviderError(
                f"postgres {self.name}: {login!r} (from {email}) is the granted role itself",
                retryable=False,
            )
        async with self._connect("grant") as conn, conn.transaction():
            if not await conn.fetchval(sql.ROLE_EXISTS, role):
                raise ProviderError(f"postgres {self.name}: role {role} does not exist")
            await self._claim(conn, login, email)
            # a concurrent grant of the same membership may win the race: that is success
            with contextlib.suppress(asyncpg.UniqueViolationError):
                async with conn.transaction():  # a savepoint, so the race leaves us usable
                    await conn.execute(f"GRANT {quote_ident(role)} TO {quote_ident(login)}")
        log.info("postgres %s: granted %s to %s (login %s)", self.name, role, email, login)
        return GrantRef(login, role).encode()

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        """Revoke what the grant recorded in ``ref`` (its login and role), whatever the login
        template or the grant parameters say now; without a ref, what they say now."""
        try:
            recorded = GrantRef.parse(ref)
        except ValueError:
            raise ProviderError(
                f"postgres {self.name}: the grant's ref is unreadable; revoke by hand",
                retryable=False,
            ) from None
        role = recorded.role if recorded and recorded.role else self._role_of(target)
        if recorded is None or recorded.login == role:
            login = self._login_of(target.email)
        else:
            login = recorded.login
        email = target.email.strip().lower()
        async with self._connect("revoke") as conn:
            if not await conn.fetchval(sql.ROLE_EXISTS, login):
                return  # no login, no membership: nothing to revoke
            if recorded is None and not await self._may_be_theirs(conn, login, email):
                # no ref (e.g. the clean-up after a refused grant): the login the template
                # gives is someone else's, so this person holds nothing through it
                log.info("postgres %s: %s is not %s's login; nothing to revoke",
                         self.name, login, email)
                return
            if not await conn.fetchval(sql.ROLE_EXISTS, role):
                return  # the role is gone, so nobody holds it
            await conn.execute(f"REVOKE {quote_ident(role)} FROM {quote_ident(login)}")
            if await conn.fetchrow(sql.MEMBERSHIP, role, login):
                raise ProviderError(
                    f"postgres {self.name}: {login} is still a member of {role} "
                    "(granted by another role?)"
                )
        log.info("postgres %s: revoked %s from %s (login %s)", self.name, role, target.email, login)

    async def check(self, target: GrantTarget) -> bool:
        """Direct membership of the person's login in the role (what grant and revoke change);
        a login that belongs to someone else is not this person's membership."""
        role, login = self._role_of(target), self._login_of(target.email)
        email = target.email.strip().lower()
        if self.logins.reserved_for(login) not in (None, email):
            return False
        async with self._connect("check") as conn:
            row = await conn.fetchrow(sql.MEMBERSHIP, role, login)
        return row is not None and marker_owner(row["note"]) in (None, email)

    async def close(self) -> None:
        return None  # one connection per call: nothing is held open

    # -- drift: who holds the role (``HolderListing``) --------------------------------------

    async def holders(self, grant: Mapping[str, Any]) -> list[Holder]:
        """Every direct member of the grant's role: logins pimbot made carry their owner's
        email (their comment), logins the policy names carry that person's."""
        role = self._role_of(GrantTarget("drift", "", "", dict(grant), None, None))
        async with self._connect("list members") as conn:
            if not await conn.fetchval(sql.ROLE_EXISTS, role):
                return []
            rows = await conn.fetch(sql.MEMBERS, role)
        holders = []
        for row in rows:
            emails = {e for e in (marker_owner(row["note"]),
                                  self.logins.reserved_for(row["login"])) if e}
            kind = HolderKind.LOGIN if row["can_login"] else HolderKind.GROUP
            holders.append(Holder(row["login"], row["login"], kind, frozenset(emails)))
        return holders

    def holder_key(self, target: GrantTarget, ref: str | None) -> str | None:
        try:
            recorded = GrantRef.parse(ref)
        except ValueError:
            return None
        if recorded is not None:
            return recorded.login
        login = self.logins.of(target.email)
        return None if login_name_problem(login) else login

    async def remove_holder(self, grant: Mapping[str, Any], holder: Holder) -> None:
        role = self._role_of(GrantTarget("drift", "", "", dict(grant), None, None))
        async with self._connect("revoke drift") as conn:
            if not await conn.fetchval(sql.ROLE_EXISTS, holder.key):
                return
            await conn.execute(f"REVOKE {quote_ident(role)} FROM {quote_ident(holder.key)}")
        log.info("postgres %s: revoked %s from %s (drift: not granted by pimbot)", self.name,
                 role, holder.key)

    async def probe(self, grants: Sequence[Mapping[str, Any]]) -> list[ProbeFinding]:
        """Connect, and see that pimbot's user may create logins and that each granted role
        exists and is pimbot's to grant (``pimbot providers check``)."""
        ok, problem = ProbeOutcome.OK, ProbeOutcome.PROBLEM
        async with self._connect("check") as conn:
            me = await conn.fetchrow(sql.ME)
            findings = [ProbeFinding(ok, "connect", f"as {me['name']}")]
            may_create = me["superuser"] or me["createrole"]
            findings.append(ProbeFinding(
                ok if may_create else problem, "create login roles",
                "CREATEROLE" if may_create else f"{me['name']} needs CREATEROLE"))
            for role in sorted({str(g.get("role")) for g in grants if is_role_name(g.get("role"))}):
                row = await conn.fetchrow(sql.GRANTABLE, role)
                if row is None:
                    findings.append(ProbeFinding(problem, f"role {role}", "does not exist"))
                elif not (me["superuser"] or row["admin"]):
                    findings.append(ProbeFinding(problem, f"role {role}", f"{me['name']} may not "
                                                 "grant it (needs ADMIN OPTION on it)"))
                else:
                    findings.append(ProbeFinding(ok, f"role {role}", "exists, grantable"))
        return findings

    async def _may_be_theirs(self, conn: Any, login: str, email: str) -> bool:
        if self.logins.reserved_for(login) not in (None, email):
            return False
        note = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", login
        )
        return marker_owner(note) in (None, email)

    def _role_of(self, target: GrantTarget) -> str:
        role = target.grant.get("role")
        if not is_role_name(role):
            raise ProviderError(
                f"postgres {self.name}: role {target.role}'s grant.role must be a PostgreSQL "
                f"role name ({ROLE_PATTERN}), not {role!r}",
                retryable=False,
            )
        return str(role)

    def _login_of(self, email: str) -> str:
        login = self.logins.of(email)
        if login_name_problem(login):
            raise ProviderError(
                f"postgres {self.name}: {login!r} (from {email}) is not a usable login name",
                retryable=False,
            )
        return login

    async def _claim(self, conn: Any, login: str, email: str) -> None:
        """Make ``login`` this person's, or refuse: see the module docstring for the rules."""
        def refuse(why: str) -> ProviderError:
            return self._refused(login, email, why)

        owner = self.logins.reserved_for(login)
        if owner not in (None, email):
            raise refuse("is given to another person by the policy's logins")
        row = await conn.fetchrow(sql.LOGIN, login)
        if row is None:
            if await self._create_login(conn, login, email):
                return
            row = await conn.fetchrow(sql.LOGIN, login)  # another pimbot created it just now
            if row is None:
                raise ProviderError(f"postgres {self.name}: login {login} vanished; retrying")
        if row["superuser"] or row["is_pimbot"]:
            # e.g. an email postgres@… mapping onto the cluster's superuser
            raise refuse("is a superuser or pimbot's own user")
        if not row["can_login"]:
            raise refuse("cannot log in (a group role?)")
        if row["has_members"]:
            raise refuse("has members, who would inherit the grant")
        marked = marker_owner(row["note"])
        if marked == email:
            return
        if marked is not None:
            raise refuse("belongs to another person")
        if self.logins.overrides.get(email) != login:
            raise refuse("was not created by pimbot for this person")
        await conn.execute(_comment(login, email))
        log.info("postgres %s: adopted login %s for %s (policy logins)", self.name, login, email)

    def _refused(self, login: str, email: str, why: str) -> ProviderError:
        log.warning("postgres %s: refused login %s for %s: %s", self.name, login, email, why)
        return ProviderError(
            f"postgres {self.name}: login {login} {why}; refusing to grant to it "
            f"(an admin can give {email} a login of their own in providers.{self.name}.logins)",
            retryable=False,
            public=f"the database login {login} {why} (an admin can give {email} their own)",
        )

    async def _create_login(self, conn: Any, login: str, email: str) -> bool:
        """Create the login marked as this person's; False if it was created concurrently."""
        try:
            async with conn.transaction():  # a savepoint: a lost race leaves us usable
                await conn.execute(f"CREATE ROLE {quote_ident(login)} LOGIN")
                await conn.execute(_comment(login, email))
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            return False
        log.info("postgres %s: created login role %s for %s", self.name, login, email)
        return True

    @asynccontextmanager
    async def _connect(self, action: str) -> AsyncIterator[Any]:
        where = f"postgres {self.name}: {action}"
        try:
            conn = await asyncpg.connect(
                self._dsn, timeout=self._timeout, command_timeout=self._timeout
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ProviderError(f"{where} could not connect: {_short(exc)}") from exc
        try:
            yield conn
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ProviderError(f"{where} failed: {_short(exc)}") from exc
        finally:
            try:
                await conn.close(timeout=self._timeout)
            except (OSError, TimeoutError, asyncpg.InterfaceError):
                conn.terminate()


def _comment(login: str, email: str) -> str:
    return f"COMMENT ON ROLE {quote_ident(login)} IS {quote_literal(owner_marker(email))}"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
