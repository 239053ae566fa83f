"""ORM objects read through a prepared statement (``store/prepared.py``), as the ORM loads them.

``session.execute(select(RequestRow).where(…))`` spends most of its ~100 µs in the ORM's
loading machinery and SQLAlchemy's execution context. A ``PreparedLoad`` reads the entity's
columns at the driver and makes the rows into the session's objects with the rules of the
ORM's own loading (``sqlalchemy.orm.loading._instance``) for a plain entity select without
options:

- a row whose identity the session already holds gives that object, unchanged, except that
  its unloaded (expired) attributes take the row's values and are committed: a change the
  caller made and has not flushed is kept, as the ORM keeps it;
- any other row becomes a new persistent object in the session's identity map, every column
  loaded and committed, its version (``version_id_col``) the one read, so a later flush
  writes it under that compare-and-set as before.

Mappers with relationships, inheritance or ``load`` listeners, and sessions with
``loaded_as_persistent`` listeners, go through ``session.execute`` instead (those are what
the ORM's loading does beyond this); so do ``FOR UPDATE`` selects, whose loading checks the
version of objects already held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import instance_state

from pimbot.store.prepared import Prepared, run

T = TypeVar("T")


class PreparedLoad(Generic[T]):
    """``select(Entity)…`` (one mapped class, no options), built once, to run with ``load``."""

    __slots__ = ("_keys", "_mapper", "_pk", "_prepared", "statement")

    def __init__(self, statement: Select[T]) -> None:
        descriptions = statement.column_descriptions
        entity = descriptions[0].get("entity") if len(descriptions) == 1 else None
        if entity is None or descriptions[0].get("expr") is not entity:
            raise TypeError("a PreparedLoad selects one mapped class")
        mapper: Mapper[Any] = inspect(entity)
        if mapper.relationships or mapper.inherits or mapper.polymorphic_map or \
                statement._with_options or statement._for_update_arg is not None or \
                statement._execution_options:
            raise TypeError(f"{mapper.class_.__name__}: only plain column mappers are loaded "
                            "here (no relationships, inheritance, options, FOR UPDATE, "
                            "execution options)")
        columns: list[Any] = [prop.columns[0] for prop in mapper.column_attrs]
        self.statement = statement
        self._mapper = mapper
        self._keys = tuple(prop.key for prop in mapper.column_attrs)
        self._pk = tuple(columns.index(column) for column in mapper.primary_key)
        self._prepared = Prepared(statement.with_only_columns(*columns))


async def load(session: AsyncSession, loader: PreparedLoad[T],
               params: Mapping[str, Any] | None = None) -> list[T]:
    """The objects ``loader``'s select finds, in its order (see the module docstring)."""
    sync = session.sync_session
    mapper = loader._mapper
    if sync.dispatch.loaded_as_persistent or mapper.class_manager.dispatch.load:
        result = await session.execute(loader.statement, params)
        return list(result.scalars())
    rows = (await run(session, loader._prepared, params)).rows
    identity_map = sync.identity_map
    identity_class = mapper._identity_class
    manager = mapper.class_manager
    keys, pk = loader._keys, loader._pk
    found: list[T] = []
    for row in rows:
        identity = (identity_class, tuple(row[i] for i in pk), None)
        existing = identity_map.get(identity)
        if existing is not None:
            state = instance_state(existing)
            unloaded = state.unloaded
            if unloaded:
                dict_ = state.dict
                filled = [key for key in keys if key in unloaded]
                for key in filled:
                    dict_[key] = row[keys.index(key)]
                state._commit(dict_, filled)
            found.append(existing)
            continue
        instance = manager.new_instance()
        state = instance_state(instance)
        state.dict.update(zip(keys, row, strict=True))
        state.key = identity
        state.identity_token = None
        state.session_id = sync.hash_key
        identity_map._add_unpresent(state, identity)
        found.append(instance)
    return found
