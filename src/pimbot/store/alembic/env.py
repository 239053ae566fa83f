"""Alembic environment: runs on the connection pimbot hands over (see store/migrate.py)."""

from __future__ import annotations

from alembic import context

from pimbot.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - pimbot always passes its connection
    raise RuntimeError("run migrations through 'pimbot db upgrade'")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
