"""``PIMBOT_DATABASE_URL`` as people write it, through the real ``pimbot`` process: plain
``postgresql://`` and ``sqlite:///`` URLs open with the async drivers; anything pimbot cannot
open, or reach, is one line in pimbot's words with a ``try:``, and never shows a password."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pimbot.secretbox import generate_key
from pimbot.store.database import Database
from postgres_support import postgres_url
from server_process import clean_env, run_pimbot


async def test_plain_postgresql_and_sqlite_urls_open_with_the_async_driver(
        db: Database, tmp_path: Path) -> None:
    plain = db.url.replace("+asyncpg", "").replace("+aiosqlite", "")
    assert plain.startswith(("postgresql://", "sqlite:///"))
    if plain.startswith("postgresql://"):
        plain += "?sslmode=disable"  # libpq's word, which asyncpg calls ssl
    env = clean_env(tmp_path, PIMBOT_DATABASE_URL=plain, PIMBOT_SECRET_KEY=generate_key(),
                    PIMBOT_AUDIT_CHECKPOINT=str(tmp_path / "checkpoints.jsonl"))
    done = await asyncio.to_thread(run_pimbot, ["run"], tmp_path, env=env,
                                   stdin="as bob@example.com\nroles\n")
    assert done.returncode == 0, done.stderr
    assert "prod-db-admin" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(("url", "said"), [
    ("nonsense", "PIMBOT_DATABASE_URL='nonsense' is not a database URL (try: "
                 "sqlite+aiosqlite:///./pimbot.db or postgresql+asyncpg://USER@HOST:5432/DB)"),
    ("postgresql+psycopg2://pim:s3cret@db.example.com/pim",
     "PIMBOT_DATABASE_URL postgresql+psycopg2://pim:***@db.example.com/pim names the driver "
     "psycopg2; pimbot opens PostgreSQL through asyncpg only (try: "
     "postgresql+asyncpg://pim:***@db.example.com/pim)"),
    ("sqlite+pysqlite:///x.db", "PIMBOT_DATABASE_URL sqlite+pysqlite:///x.db names the driver "
                                "pysqlite; pimbot opens SQLite through aiosqlite only (try: "
                                "sqlite+aiosqlite:///x.db)"),
    ("mysql://pim:s3cret@db/pim", "PIMBOT_DATABASE_URL names mysql; pimbot stores its data in "
                                  "SQLite or PostgreSQL (try: sqlite+aiosqlite:///./pimbot.db "
                                  "or postgresql+asyncpg://USER@HOST:5432/DB)"),
    ("postgresql+asyncpg://pim:s3cret@127.0.0.1:1/pim",
     "cannot reach the database at postgresql+asyncpg://pim:***@127.0.0.1:1/pim: connection "
     "refused (try: start PostgreSQL there, or check PIMBOT_DATABASE_URL)"),
    ("sqlite:////nonexistent/dir/pimbot.db",
     "cannot reach the SQLite database /nonexistent/dir/pimbot.db: the directory "
     "/nonexistent/dir does not exist (try: create it, or check PIMBOT_DATABASE_URL)"),
])  # fmt: skip
def test_a_url_pimbot_cannot_open_is_one_line_with_a_try(
        tmp_path: Path, url: str, said: str) -> None:
    env = clean_env(tmp_path, PIMBOT_DATABASE_URL=url, PIMBOT_SECRET_KEY=generate_key())
    done = run_pimbot(["run"], tmp_path, env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"pimbot: {said}"]
    assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.postgres
def test_a_database_that_refuses_pimbot_is_named_in_one_line(tmp_path: Path) -> None:
    admin = postgres_url()
    assert admin is not None
    missing = admin.rsplit("/", 1)[0] + "/pimbot_no_such_database"
    env = clean_env(tmp_path, PIMBOT_DATABASE_URL=missing, PIMBOT_SECRET_KEY=generate_key())
    done = run_pimbot(["db", "upgrade"], tmp_path, env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"pimbot: cannot use the database at {missing}: database \"pimbot_no_such_database\" "
        "does not exist (try: check PIMBOT_DATABASE_URL)"]
