"""The ``pimbot`` command line, run as a real process."""

from __future__ import annotations

import base64
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pimbot.store.audit_log import append_event
from pimbot.store.database import Database
from server_process import clean_env, run_pimbot

BAD_POLICY = """\
admins: [sec-lead@example.com]
providers:
  nothing: {type: noop}
roles:
  prod-db-admin:
    provider: nothing
    max_duration: 99x
    default_duraton: 1h
assignments:
  - {user: bob@example.com, role: no-such-role, type: eligible}
"""


def test_keygen_prints_a_fresh_32_byte_url_safe_key(tmp_path: Path) -> None:
    first = run_pimbot(["keygen"], tmp_path)
    second = run_pimbot(["keygen"], tmp_path)
    assert first.returncode == 0
    key = first.stdout.strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
    assert key != second.stdout.strip()


def test_every_sub_command_has_help(tmp_path: Path) -> None:
    for args in (["--help"], ["run", "--help"], ["policy", "validate", "--help"],
                 ["audit", "export", "--help"], ["mfa", "rotate-key", "--help"]):  # fmt: skip
        done = run_pimbot(args, tmp_path)
        assert done.returncode == 0, args
        assert "usage: pimbot" in done.stdout


def test_a_usage_mistake_exits_2(tmp_path: Path) -> None:
    done = run_pimbot(["audit", "export", "--format", "xml"], tmp_path)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_policy_validate_lists_every_error_with_its_yaml_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY, encoding="utf-8")
    done = run_pimbot(["policy", "validate", str(bad)], tmp_path)
    assert done.returncode == 1
    assert "roles.prod-db-admin.max_duration" in done.stderr
    assert "roles.prod-db-admin.default_duraton" in done.stderr
    assert "assignments[0].role" in done.stderr
    assert "Traceback" not in done.stderr


def test_policy_validate_accepts_a_good_file(tmp_path: Path) -> None:
    done = run_pimbot(["policy", "validate"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "policy OK: 1 roles, 1 assignments"


def test_bad_settings_are_refused_with_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PIMBOT_ADAPTERS="console,irc")
    done = run_pimbot(["db", "upgrade"], tmp_path, env=env)
    assert done.returncode == 1
    assert "unknown adapter 'irc'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def _write_events(url: str, count: int) -> None:
    db = Database(url)
    try:
        for n in range(count):
            async with db.transaction() as session:
                await append_event(
                    db, session, at=datetime(2026, 11, 2, 9, n, tzinfo=UTC),
                    actor="sec-lead@example.com", action="test.event", subject=f"item-{n}",
                )  # fmt: skip
    finally:
        await db.dispose()


async def test_audit_verify_passes_then_names_the_tampered_event(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert run_pimbot(["db", "upgrade"], tmp_path, env=env).returncode == 0
    await _write_events(env["PIMBOT_DATABASE_URL"], 3)

    intact = run_pimbot(["audit", "verify"], tmp_path, env=env)
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout

    with sqlite3.connect(tmp_path / "pimbot.db") as raw:
        raw.execute("UPDATE audit_events SET actor = 'mallory@example.com' WHERE seq = 2")
    broken = run_pimbot(["audit", "verify"], tmp_path, env=env)
    assert broken.returncode == 1
    assert "event 2" in broken.stderr


async def test_audit_export_writes_csv_to_a_file(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert run_pimbot(["db", "upgrade"], tmp_path, env=env).returncode == 0
    await _write_events(env["PIMBOT_DATABASE_URL"], 2)
    out = tmp_path / "audit.csv"
    done = run_pimbot(["audit", "export", "--format", "csv", "--output", str(out)], tmp_path,
                      env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("seq,at,actor,action")
    assert len(lines) == 3
    assert "item-1" in lines[2]


def test_postgres_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        PIMBOT_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:9/none",
        PIMBOT_ADAPTERS="none",
    )
    done = run_pimbot(["run"], tmp_path, env=env)
    assert done.returncode == 1
    assert "PIMBOT_SECRET_KEY is not set" in done.stderr
    assert "pimbot keygen" in done.stderr


def test_rotate_key_refuses_a_malformed_new_key(tmp_path: Path) -> None:
    done = run_pimbot(["mfa", "rotate-key", "--new-key", "not-a-key"], tmp_path)
    assert done.returncode == 1
    assert "--new-key" in done.stderr
    assert "not-a-key" not in done.stderr
