"""The postgres provider: a real ``GRANT role TO login`` on a PostgreSQL server via asyncpg.

Identifiers cannot be bound as query parameters, so every name is first checked against a
strict pattern and then double-quoted; values (names in catalog queries) are always bound.
"""

from __future__ import annotations

import contextlib
import logging
import re
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import asyncpg

from pimbot.ports import GrantTarget
from pimbot.providers.errors import ProviderError

log = logging.getLogger(__name__)

LOGIN_FIELDS = frozenset({"email_local", "email"})
_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,62}")
_LOGIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_@.+\-]{0,62}")
_NOT_LOCAL = re.compile(r"[^a-z0-9_]")

_PRIVILEGED_LOGIN = (
    "SELECT rolsuper OR rolname = current_user FROM pg_roles WHERE rolname = $1"
)
_ROLE_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)"
_IS_MEMBER = """
SELECT EXISTS (
  SELECT 1 FROM pg_auth_members m
  JOIN pg_roles r ON r.oid = m.roleid
  JOIN pg_roles u ON u.oid = m.member
  WHERE r.rolname = $1 AND u.rolname = $2)
"""


class DriftPolicy(StrEnum):
    ALERT = "alert"
    IGNORE = "ignore"


def login_template_errors(template: str) -> str | None:
    """Why a ``login`` template is unusable, or None when it is fine."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return "is not a valid template (unbalanced braces)"
    fields = [(name, spec, conv) for _, name, spec, conv in parts if name is not None]
    if not fields:
        return "must contain {email_local} or {email}, or everyone would share one login"
    for name, spec, conv in fields:
        if name not in LOGIN_FIELDS:
            return f"may use only {{email_local}} and {{email}}, not {{{name}}}"
        if spec or conv:
            return "placeholders take no format specs or conversions"
    return None


def login_for(template: str, email: str) -> str:
    """The database login for a person: ``{email_local}`` is the part before ``@``, lowercased,
    with everything but ``[a-z0-9_]`` replaced by ``_``; ``{email}`` is the lowercased email."""
    lowered = email.strip().lower()
    local = _NOT_LOCAL.sub("_", lowered.split("@", 1)[0])
    return template.format(email_local=local, email=lowered)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresProvider:
    """Grants the role's ``grant: {role: NAME}`` PostgreSQL role to the person's login."""

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        login: str = "{email_local}",
        drift: DriftPolicy = DriftPolicy.ALERT,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.login_template = login
        self.drift = drift
        self._dsn = dsn
        self._timeout = timeout

    async def grant(self, target: GrantTarget) -> str | None:
        role, login = self._names(target)
        async with self._connect("grant") as conn:
            if not await conn.fetchval(_ROLE_EXISTS, role):
                raise ProviderError(f"postgres {self.name}: role {role} does not exist")
            if not await conn.fetchval(_ROLE_EXISTS, login):
                await self._create_login(conn, login)
            elif await conn.fetchval(_PRIVILEGED_LOGIN, login):
                # never touch a superuser or pimbot's own connection user (e.g. an email
                # postgres@… mapping onto the cluster's superuser)
                raise ProviderError(
                    f"postgres {self.name}: login {login} is a superuser or pimbot's own user; "
                    "refusing to grant to it (change the login template)",
                    retryable=False,
                )
            # a concurrent grant of the same membership may win the race: that is success
            with contextlib.suppress(asyncpg.UniqueViolationError):
                await conn.execute(f"GRANT {quote_ident(role)} TO {quote_ident(login)}")
        log.info("postgres %s: granted %s to %s (login %s)", self.name, role, target.email, login)
        return login

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        """Revoke from the login the grant returned (``ref``), else the one the template gives."""
        role, login = self._names(target)
        if ref and _usable_login(ref, role):
            login = ref
        async with self._connect("revoke") as conn:
            if not await conn.fetchval(_ROLE_EXISTS, login):
                return  # no login, no membership: nothing to revoke
            if not await conn.fetchval(_ROLE_EXISTS, role):
                return  # the role is gone, so nobody holds it
            await conn.execute(f"REVOKE {quote_ident(role)} FROM {quote_ident(login)}")
            if await conn.fetchval(_IS_MEMBER, role, login):
                raise ProviderError(
                    f"postgres {self.name}: {login} is still a member of {role} "
                    "(granted by another role?)"
                )
        log.info("postgres %s: revoked %s from %s (login %s)", self.name, role, target.email, login)

    async def check(self, target: GrantTarget) -> bool:
        """Direct membership of the login in the role (what grant and revoke change)."""
        role, login = self._names(target)
        async with self._connect("check") as conn:
            return bool(await conn.fetchval(_IS_MEMBER, role, login))

    async def close(self) -> None:
        return None  # one connection per call: nothing is held open

    def _names(self, target: GrantTarget) -> tuple[str, str]:
        role = target.grant.get("role")
        if not isinstance(role, str) or not _ROLE_NAME.fullmatch(role):
            raise ProviderError(
                f"postgres {self.name}: role {target.role}'s grant.role must be a PostgreSQL "
                f"role name ([A-Za-z_][A-Za-z0-9_.-]*, at most 63), not {role!r}",
                retryable=False,
            )
        login = login_for(self.login_template, target.email)
        if not _usable_login(login, role):
            raise ProviderError(
                f"postgres {self.name}: {login!r} (from {target.email}) is not a usable login name",
                retryable=False,
            )
        return role, login

    async def _create_login(self, conn: Any, login: str) -> None:
        # created concurrently: it exists now, which is all we need
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await conn.execute(f"CREATE ROLE {quote_ident(login)} LOGIN")
            log.info("postgres %s: created login role %s", self.name, login)

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


def _usable_login(login: str, role: str) -> bool:
    return bool(_LOGIN_NAME.fullmatch(login)) and not login.startswith("pg_") and login != role


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
