"""``PIMBOT_DATABASE_URL`` as people write it, made into the async URL pimbot opens.

pimbot runs SQLite through aiosqlite and PostgreSQL through asyncpg (its prepared statements
need asyncpg's positional parameters). Many tools hand out plain ``postgresql://`` (or
``postgres://``) and ``sqlite:///`` URLs, so those name the async driver implicitly:
``postgresql://u@h/db`` opens as ``postgresql+asyncpg://u@h/db`` (libpq's ``sslmode=`` becomes
asyncpg's ``ssl=``, which takes the same values), ``sqlite:///x.db`` as
``sqlite+aiosqlite:///x.db``. Any other driver or database is refused in one line with the URL
to use instead. No message shows a URL's password (``redacted``).

Pure text work: no SQLAlchemy import (``pimbot keygen`` and ``--help`` stay instant).
"""

from __future__ import annotations

import re

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./pimbot.db"
SQLITE_ASYNC, POSTGRES_ASYNC = "sqlite+aiosqlite", "postgresql+asyncpg"
IMPLIED_DRIVER = {"sqlite": SQLITE_ASYNC, "postgresql": POSTGRES_ASYNC,
                  "postgres": POSTGRES_ASYNC}
EXAMPLES = f"{SQLITE_ASYNC}:///./pimbot.db or {POSTGRES_ASYNC}://USER@HOST:5432/DB"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9.]*)(?:\+([A-Za-z0-9_]+))?://")
_SSLMODE = re.compile(r"([?&])sslmode=")


class DatabaseUrlError(ValueError):
    """A ``PIMBOT_DATABASE_URL`` pimbot cannot open: the message, and the URL to try."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def database_url(raw: str) -> str:
    """The async SQLAlchemy URL for ``raw`` (empty: the default SQLite file)."""
    text = raw.strip()
    if not text:
        return DEFAULT_DATABASE_URL
    found = _SCHEME.match(text)
    if found is None:
        raise DatabaseUrlError(
            f"PIMBOT_DATABASE_URL={redacted(text)!r} is not a database URL", EXAMPLES)
    dialect, driver = found.group(1).lower(), (found.group(2) or "").lower()
    rest = text[found.end():]
    async_scheme = IMPLIED_DRIVER.get(dialect)
    if async_scheme is None:
        raise DatabaseUrlError(
            f"PIMBOT_DATABASE_URL names {dialect}; pimbot stores its data in SQLite or "
            "PostgreSQL", EXAMPLES)
    wanted = async_scheme.partition("+")[2]
    if driver and driver != wanted:
        raise DatabaseUrlError(
            f"PIMBOT_DATABASE_URL {redacted(text)} names the driver {driver}; pimbot opens "
            f"{'SQLite' if dialect == 'sqlite' else 'PostgreSQL'} through {wanted} only",
            f"{redacted(async_scheme + '://' + rest)}")
    if async_scheme == POSTGRES_ASYNC and not driver:
        rest = _SSLMODE.sub(r"\1ssl=", rest)  # asyncpg's ssl= takes libpq's sslmode values
    return f"{async_scheme}://{rest}"


def redacted(url: str) -> str:
    """``url`` with its password (what follows ``user:`` before the last ``@``) as ``***``.
    Masks too much rather than too little: an ``@`` later in the URL moves the end."""
    scheme, separator, rest = url.partition("://")
    prefix = scheme + separator if separator else ""
    if not separator:
        rest = url
    at = rest.rfind("@")
    if at < 0:
        return url
    user, colon, _ = rest[:at].partition(":")
    return f"{prefix}{user}:***{rest[at:]}" if colon else url
