"""Compare-and-set updates of many versioned rows in one statement (a batch's writes).

The ORM writes a versioned row (``version_id_col``) as one ``UPDATE … WHERE id = ? AND
version = ?`` per row; on asyncpg, which reports no per-row counts for an executemany, that
is one round trip per row. ``set_each`` writes a batch's changes with the same rule in one
statement per 500 rows:

- PostgreSQL: ``UPDATE t SET … FROM unnest(ids, versions, new values…) AS v WHERE
  t.id = v.id AND t.version = v.version RETURNING t.id`` (one array per column, so one
  statement text whatever the number of rows): the rows returned are the ones whose
  compare-and-set won;
- SQLite (writers are serial): one executemany of the single-row statement, whose total
  count says whether every row won.

Every row bumps its version, as the ORM's flush does. When one row lost (it changed since
it was read), ``StaleDataError`` is raised, as the ORM's flush raises it, and the caller's
transaction rolls back. Otherwise the ORM objects take the new values as already written,
so no later flush writes them again and a later change compares against the new version.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, inspect, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, Mapper
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from pimbot.store.prepared import Prepared, run, run_many

_CHUNK = 500
_ID, _VERSION = "cas_id", "cas_version"

Change = tuple[Any, Mapping[str, Any]]  # an ORM object and its new attribute values


async def set_many(session: AsyncSession, rows: Sequence[Any], new: Mapping[str, Any]) -> None:
    """Set the same ``new`` values on every one of ``rows``; see ``set_each``."""
    await set_each(session, [(row, new) for row in rows])


async def set_each(session: AsyncSession, changes: Sequence[Change]) -> None:
    """Write each row's new values under its version's compare-and-set, in a few statements
    (rows of one class; rows whose values name different attributes go in separate
    statements). Raises StaleDataError when any row changed since it was read."""
    await session.flush()  # pending changes first, so the versions read here are current
    groups: dict[tuple[type, tuple[str, ...]], list[Change]] = {}
    for row, new in changes:
        groups.setdefault((type(row), tuple(sorted(new))), []).append((row, new))
    for (cls, keys), group in groups.items():
        for start in range(0, len(group), _CHUNK):
            await _write(session, cls, keys, group[start:start + _CHUNK])


async def _write(session: AsyncSession, cls: type, keys: tuple[str, ...],
                 changes: Sequence[Change]) -> None:
    mapper: Mapper[Any] = inspect(cls)
    table = mapper.local_table
    assert isinstance(table, Table) and mapper.version_id_col is not None
    id_key = mapper.get_property_by_column(mapper.primary_key[0]).key
    version_key = mapper.get_property_by_column(mapper.version_id_col).key
    columns = {key: mapper.attrs[key].columns[0].name for key in keys}
    if session.get_bind().dialect.name == "postgresql":
        await _write_returning(session, table, id_key, version_key, columns, changes)
    else:
        await _write_many(session, table, id_key, version_key, columns, changes)
    for row, new in changes:
        for key in keys:
            set_committed_value(row, key, new[key])
        set_committed_value(row, version_key, getattr(row, version_key) + 1)
    _settle(session, [row for row, _ in changes])


async def _write_returning(session: AsyncSession, table: Table, id_key: str,
                           version_key: str, columns: Mapping[str, str],
                           changes: Sequence[Change]) -> None:
    pk, version = table.c[id_key], table.c[version_key]
    dialect = session.get_bind().dialect
    statement = _unnest_update(table, pk.name, version.name, tuple(
        (name, table.c[name].type.compile(dialect=dialect)) for name in columns.values()))
    params: dict[str, list[Any]] = {
        _ID: [getattr(row, id_key) for row, _ in changes],
        _VERSION: [getattr(row, version_key) for row, _ in changes]}
    for key, name in columns.items():
        params[name] = [_utc(new[key]) for _, new in changes]
    won = set((await session.execute(statement, params)).scalars())
    lost = [getattr(row, id_key) for row, _ in changes if getattr(row, id_key) not in won]
    if lost:
        raise StaleDataError(f"{table.name}: {len(lost)} of {len(changes)} rows changed "
                             f"since they were read (first {lost[0]})")


@functools.cache
def _unnest_update(table: Table, pk: str, version: str,
                   columns: tuple[tuple[str, str], ...]) -> TextClause:
    """``UPDATE t SET … FROM unnest(arrays…) AS cas(…) WHERE id and version match
    RETURNING id``: one array per column, so the text is the same whatever the number of
    rows (prepared once by asyncpg, never compiled again by SQLAlchemy)."""
    arrays = ", ".join([f"CAST(:{_ID} AS {table.c[pk].type.compile()}[])",
                        f"CAST(:{_VERSION} AS INTEGER[])"]
                       + [f"CAST(:{name} AS {sql_type}[])" for name, sql_type in columns])
    names = ", ".join([_ID, _VERSION, *(name for name, _ in columns)])
    sets = ", ".join([f"{name} = cas.{name}" for name, _ in columns]
                     + [f"{version} = {table.name}.{version} + 1"])
    return text(f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS cas({names}) "
                f"WHERE {table.name}.{pk} = cas.{_ID} AND {table.name}.{version} = "
                f"cas.{_VERSION} RETURNING {table.name}.{pk}")


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


@functools.cache
def _single_update(table: Table, id_key: str, version_key: str,
                   columns: tuple[tuple[str, str], ...]) -> Prepared:
    """``UPDATE t SET … , version = version + 1 WHERE id = ? AND version = ?``, built once
    per table and set of columns and run at the driver (``store/prepared.py``)."""
    pk, version = table.c[id_key], table.c[version_key]
    return Prepared(update(table)
                    .where(pk == bindparam(_ID), version == bindparam(_VERSION))
                    .values({name: bindparam(f"new_{key}", type_=table.c[name].type)
                             for key, name in columns} | {version.name: version + 1}))


async def write_row(session: AsyncSession, row: Any) -> None:
    """What ``session.flush()`` does for one changed versioned row (its changed columns under
    the compare-and-set of its version, StaleDataError if it lost), as a Core statement built
    once per set of columns instead of the unit of work. Anything else pending in the
    session is left to the ORM's own flush, with the row."""
    state = inspect(row)
    others = any(obj is not row for obj in (*session.new, *session.dirty)) or session.deleted
    if state.key is None or others:
        await session.flush()
        return
    mapper: Mapper[Any] = state.mapper
    assert mapper.version_id_col is not None
    version_key = mapper.get_property_by_column(mapper.version_id_col).key
    id_key = mapper.get_property_by_column(mapper.primary_key[0]).key
    # Only an attribute set since the row was read or written has an entry in
    # ``committed_state``; the others have no history to ask for (a request has 28 columns).
    columns = mapper.column_attrs
    new = {key: added[0] for key in state.committed_state
           if key in columns and (added := state.attrs[key].history.added)}
    if not new:
        return
    table = mapper.local_table
    assert isinstance(table, Table)
    keys = tuple(sorted(new))
    statement = _single_update(table, id_key, version_key, tuple(
        (key, mapper.attrs[key].columns[0].name) for key in keys))
    old_version = state.committed_state.get(version_key, getattr(row, version_key))
    result = await run(session, statement, {
        _ID: getattr(row, id_key), _VERSION: old_version,
        **{f"new_{key}": new[key] for key in keys}}, autoflush=False)  # the row is pending
    if result.rowcount != 1:
        raise StaleDataError(f"{table.name}: row {getattr(row, id_key)} changed since it was "
                             "read")
    for key in keys:
        set_committed_value(row, key, new[key])
    set_committed_value(row, version_key, old_version + 1)
    _settle(session, [row])


def _settle(session: AsyncSession, rows: Sequence[Any]) -> None:
    """Rows whose every change has just been written are clean again, as a flush leaves
    them: otherwise they stay in ``session.dirty`` (``set_committed_value`` does not clear
    the flag the change set), and the next flush, or the commit's, runs the unit of work
    over them to find nothing to write. A row with another change pending keeps it."""
    states = [(state, state.dict) for state in map(inspect, rows)
              if state.modified and not state.committed_state]
    if states:  # what the unit of work does after a flush (no public API for it)
        InstanceState._commit_all_states(states, session.sync_session.identity_map)


async def _write_many(session: AsyncSession, table: Table, id_key: str, version_key: str,
                      columns: Mapping[str, str], changes: Sequence[Change]) -> None:
    statement = _single_update(table, id_key, version_key, tuple(columns.items()))
    params = [{_ID: getattr(row, id_key), _VERSION: getattr(row, version_key),
               **{f"new_{key}": new[key] for key in columns}} for row, new in changes]
    written = (await run_many(session, statement, params)).rowcount
    if written != len(changes):
        raise StaleDataError(f"{table.name}: {len(changes) - written} of {len(changes)} rows "
                             "changed since they were read")
