"""Regenerate the initial Alembic migration from the tables (before the first release only).

Usage: .venv/bin/python tools/regen_initial_migration.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from pimbot.store.migrate import SCRIPT_LOCATION, alembic_config

versions = SCRIPT_LOCATION / "versions"
for old in versions.glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    engine = create_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
    with engine.begin() as conn:
        config = alembic_config(conn)
        command.revision(config, message="initial", autogenerate=True, rev_id="0001")
for made in versions.glob("0001_*.py"):
    made.rename(versions / "0001_initial.py")
print("wrote", versions / "0001_initial.py")
