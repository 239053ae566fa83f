"""The ``pimbot`` command line: in-process through ``main(argv)``, and once as a real process."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pimbot.store.audit_log import append_event
from pimbot_server.bench import run_benchmarks
from pimbot_server.cli import build_parser, main
from pimbot_server.settings import Settings
from pimbot_server.storage import open_database
from server_process import POLICY, run_pimbot

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

POSTGRES_POLICY = """\
admins: [bob.smith@example.com]
providers:
  proddb: {type: postgres, dsn: "postgresql://pimbot@db.example.com/prod"}
roles:
  prod-db-admin:
    provider: proddb
    grant: {role: "app_admin\\"; DROP ROLE postgres; --"}
assignments:
  - {user: bob-smith@example.com, role: prod-db-admin, type: eligible}
"""


@dataclass
class Done:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """``pimbot ARGS`` in this process, in a temp directory with a clean environment."""

    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def database_url(self) -> str:
        return os.environ["PIMBOT_DATABASE_URL"]

    def __call__(self, *args: str) -> Done:
        self.capsys.readouterr()
        code = main(list(args))
        captured = self.capsys.readouterr()
        return Done(code, captured.out, captured.err)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    for name in list(os.environ):
        if name.startswith(("PIMBOT_", "SLACK_", "MICROSOFT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv("PIMBOT_POLICY", str(tmp_path / "policy.yaml"))
    monkeypatch.setenv("PIMBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}")
    return Cli(tmp_path, capsys)


def test_keygen_prints_a_fresh_32_byte_url_safe_key(tmp_path: Path, cli: Cli) -> None:
    first = run_pimbot(["keygen"], tmp_path)  # the installed console script, for real
    assert first.returncode == 0
    key = first.stdout.strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
    assert key != cli("keygen").out.strip()


@pytest.mark.parametrize(
    "args",
    [[], ["run"], ["db", "upgrade"], ["policy", "validate"], ["policy", "plan"],
     ["policy", "apply"], ["audit", "verify"], ["audit", "export"], ["audit", "rotate-key"],
     ["audit", "purge"], ["db", "backup"],
     ["keygen"],
     ["mfa", "rotate-key"], ["manifest", "slack"], ["manifest", "teams"], ["bench"]],
)  # fmt: skip
def test_every_sub_command_has_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: pimbot")


def test_a_usage_mistake_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "export", "--format", "xml"])
    assert exited.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_bad_settings_are_refused_with_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIMBOT_ADAPTERS", "console,irc")
    done = cli("db", "upgrade")
    assert done.code == 1
    assert "unknown adapter 'irc'" in done.err
    assert len(done.err.strip().splitlines()) == 1


def test_policy_validate_lists_every_error_with_its_yaml_path(cli: Cli) -> None:
    bad = cli.tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY, encoding="utf-8")
    done = cli("policy", "validate", str(bad))
    assert done.code == 1
    assert "roles.prod-db-admin.max_duration" in done.err
    assert "roles.prod-db-admin.default_duraton" in done.err
    assert "assignments[0].role" in done.err
    assert done.out == ""


def test_policy_validate_reports_what_the_postgres_provider_would_refuse(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = cli.tmp_path / "pg.yaml"
    bad.write_text(POSTGRES_POLICY, encoding="utf-8")
    done = cli("policy", "validate", str(bad))
    assert done.code == 1
    errors = done.err.strip().splitlines()
    assert errors == [
        f"{bad}: roles.prod-db-admin.grant.role: 'app_admin\"; DROP ROLE postgres; --' is not a "
        "PostgreSQL role name ([A-Za-z_][A-Za-z0-9_.-]*, at most 63 characters)",
        f"{bad}: assignments[0].user: bob-smith@example.com and bob.smith@example.com (admins[0])"
        " would share the PostgreSQL login bob_smith on proddb; give one of them a login of their"
        " own in providers.proddb.logins",
    ]
    for args in (["policy", "plan", str(bad)], ["policy", "apply", str(bad)]):
        done = cli(*args)
        assert (done.code, done.err.strip().splitlines()) == (1, errors)
    monkeypatch.setenv("PIMBOT_POLICY", str(bad))
    started = cli("run")
    assert started.code == 1
    assert "roles.prod-db-admin.grant.role" in started.err


def test_policy_validate_refuses_an_unknown_whois_setting(cli: Cli) -> None:
    bad = cli.tmp_path / "whois.yaml"
    bad.write_text("whois: anyone\n" + POLICY, encoding="utf-8")
    done = cli("policy", "validate", str(bad))
    assert done.code == 1
    assert done.err.strip() == f"{bad}: whois: 'anyone' is not one of: privileged, everyone"
    bad.write_text("whois: everyone\n" + POLICY, encoding="utf-8")
    assert cli("policy", "validate", str(bad)).code == 0


def test_policy_validate_accepts_a_good_file(cli: Cli) -> None:
    done = cli("policy", "validate")
    assert done.code == 0, done.err
    assert done.out.strip() == "policy OK: 1 roles, 1 assignments"


def test_policy_plan_changes_nothing_and_apply_makes_it_so(cli: Cli) -> None:
    planned = cli("policy", "plan")
    assert planned.code == 0, planned.err
    assert "bob@example.com" in planned.out
    assert "to add" in planned.out
    applied = cli("policy", "apply")
    assert applied.code == 0, applied.err
    assert cli("policy", "plan").out.strip() == "No changes."


async def _write_events(url: str, count: int) -> None:
    # under the key the CLI configures (here derived from the development key file)
    db = await open_database(Settings.from_env({**os.environ, "PIMBOT_DATABASE_URL": url}))
    try:
        for n in range(count):
            async with db.transaction() as session:
                await append_event(
                    db, session, at=datetime(2026, 11, 2, 9, n, tzinfo=UTC),
                    actor="sec-lead@example.com", action="test.event", subject=f"item-{n}",
                )  # fmt: skip
    finally:
        await db.dispose()


def test_audit_verify_passes_then_names_the_tampered_event(cli: Cli) -> None:
    assert cli("db", "upgrade").code == 0
    asyncio.run(_write_events(cli.database_url, 3))

    intact = cli("audit", "verify")
    assert intact.code == 0, intact.err
    assert intact.out.startswith("audit log intact: 3 events; head 3:")
    head = intact.out.split("head ", 1)[1].split()[0]

    with sqlite3.connect(cli.tmp_path / "pimbot.db") as raw:
        raw.execute("UPDATE audit_events SET actor = 'mallory@example.com' WHERE seq = 2")
    broken = cli("audit", "verify")
    assert broken.code == 1
    assert "broken at event 2" in broken.err

    with sqlite3.connect(cli.tmp_path / "pimbot.db") as raw:
        raw.execute("DELETE FROM audit_events WHERE seq >= 2")  # drop the newest events
    truncated = cli("audit", "verify", "--anchor", head)
    assert truncated.code == 1
    assert "event 3 of the anchor is missing" in truncated.err


def test_audit_purge_keeps_the_rest_verifiable(cli: Cli) -> None:
    assert cli("db", "upgrade").code == 0
    asyncio.run(_write_events(cli.database_url, 4))
    done = cli("audit", "purge", "--before", "2026-11-02T09:01:30Z")
    assert done.code == 0, done.err
    assert "purged 2 event(s)" in done.out and "starts after event 2" in done.out
    intact = cli("audit", "verify")
    assert intact.code == 0, intact.err
    assert intact.out.startswith("audit log intact: 3 events; head 5:")  # 3, 4 and the purge
    assert cli("audit", "purge", "--before", "2099-01-01").code == 2  # never the future


def test_db_backup_copies_a_live_sqlite_database_and_never_overwrites(cli: Cli) -> None:
    assert cli("db", "upgrade").code == 0
    asyncio.run(_write_events(cli.database_url, 3))
    copy = cli.tmp_path / "backup.db"
    done = cli("db", "backup", str(copy))
    assert done.code == 0, done.err
    assert "integrity ok" in done.out and "PIMBOT_SECRET_KEY" in done.err
    with sqlite3.connect(copy) as raw:
        assert raw.execute("SELECT count(*) FROM audit_events").fetchone() == (3,)
    again = cli("db", "backup", str(copy))
    assert again.code == 1 and "never overwrites" in again.err


def test_db_backup_on_postgres_prints_the_pg_dump_line_without_the_password(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIMBOT_DATABASE_URL",
                       "postgresql+asyncpg://pimbot:s3cret@db.example.com:5433/pim")
    done = cli("db", "backup")
    assert done.code == 1
    assert "pg_dump --format=custom" in done.out and "--host=db.example.com" in done.out
    assert "s3cret" not in done.out + done.err


def test_audit_export_writes_csv_to_a_file_and_jsonl_to_stdout(cli: Cli) -> None:
    assert cli("db", "upgrade").code == 0
    asyncio.run(_write_events(cli.database_url, 2))
    out = cli.tmp_path / "audit.csv"
    done = cli("audit", "export", "--format", "csv", "--output", str(out))
    assert done.code == 0, done.err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("seq,at,actor,action")
    assert len(lines) == 3
    assert "item-1" in lines[2]

    recent = cli("audit", "export", "--since", "2026-11-02T09:01:00Z")
    assert recent.code == 0, recent.err
    assert [line.count('"subject": "item-1"') for line in recent.out.splitlines()] == [1]


def test_postgres_without_a_secret_key_refuses_to_start(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIMBOT_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("PIMBOT_ADAPTERS", "none")
    done = cli("run")
    assert done.code == 1
    assert "PIMBOT_SECRET_KEY is not set" in done.err
    assert "pimbot keygen" in done.err


def test_rotate_key_refuses_a_malformed_new_key(cli: Cli) -> None:
    done = cli("mfa", "rotate-key", "--new-key", "not-a-key")
    assert done.code == 2  # a malformed argument is wrong usage
    assert "--new-key" in done.err
    assert "not-a-key" not in done.err


def test_rotate_key_moves_the_dev_key_file_to_the_new_key(cli: Cli) -> None:
    new_key = cli("keygen").out.strip()
    done = cli("mfa", "rotate-key", f"--new-key={new_key}")  # a key may start with "-"
    assert done.code == 0, done.err
    assert "re-encrypted 0 TOTP secret(s)" in done.out
    assert (cli.tmp_path / "pimbot.db.key").read_text().strip() == new_key
    assert new_key not in done.out + done.err


async def test_bench_runs_every_bench_module_and_prints_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "bench_tiny.py").write_text(
        "async def main(args):\n    return {'rounds': 3 if args.quick else 30, 'ratio': 1.25}\n"
    )
    (folder / "bench_broken.py").write_text("async def main(args):\n    raise RuntimeError('x')\n")
    monkeypatch.chdir(tmp_path)
    assert await run_benchmarks(build_parser().parse_args(["bench", "--quick"])) == 1
    out = capsys.readouterr().out
    assert "── tiny" in out
    assert "rounds" in out and " 3" in out
    assert "ratio   1.25" in out
    assert "RuntimeError: x" in out  # the broken one is reported, and the run fails
    written = json.loads((tmp_path / "bench-results.json").read_text())
    assert written["reports"]["tiny"] == {"rounds": 3, "ratio": 1.25}
    assert written["machine"]["cpus"] and written["quick"] is True


async def test_bench_runs_only_the_names_given_and_summarises_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "bench_burst.py").write_text(
        "async def main(args):\n"
        "    return {'figure': 'p99 1.4 s', 'target': 'all within 2 s', 'met': True}\n"
    )
    (folder / "bench_burst_pg.py").write_text("async def main(args):\n    return {'x': 1}\n")
    (folder / "bench_memory.py").write_text(
        "async def main(args):\n"
        "    return {'figure': 'RSS 180 MB', 'target': 'under 150 MB', 'met': False}\n"
    )
    (folder / "bench_slow.py").write_text("async def main(args):\n    raise SystemExit(9)\n")
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["bench", "burst", "memory", "--out", "r.json"])
    assert await run_benchmarks(args) == 0
    out = capsys.readouterr().out
    assert "── burst " in out and "── memory" in out
    assert "burst_pg" not in out and "slow" not in out  # an exact name runs that one only
    summary = out.split("── summary", 1)[1]
    assert "p99 1.4 s" in summary and "all within 2 s" in summary and "yes" in summary
    assert "RSS 180 MB" in summary and "NO" in summary
    assert set(json.loads((tmp_path / "r.json").read_text())["reports"]) == {"burst", "memory"}
    unknown = build_parser().parse_args(["bench", "nosuch", "--out", "-"])
    assert await run_benchmarks(unknown) == 1
    assert "there are: burst, burst_pg, memory, slow" in capsys.readouterr().err


def test_review_export_writes_every_item_decision_and_reason(cli: Cli) -> None:
    from pimbot.store.database import Database
    from workflow.harness import make_pim

    async def review() -> str:
        db = Database(cli.database_url)
        await db.upgrade()
        try:
            pim = await make_pim(db)
            started = await pim.say("sec-lead@example.com", "review start prod-db-admin")
            campaign = started.subject
            async with db.read() as session:
                from sqlalchemy import select

                from pimbot.store.tables import ReviewItemRow

                items = (await session.scalars(select(ReviewItemRow))).all()
            for item in items:
                if item.email == "bob@example.com":
                    await pim.say("carol@example.com",
                                  f"review remove {item.id} reason =HYPERLINK(\"x\")")
                else:
                    await pim.say("carol@example.com", f"review keep {item.id}")
            return campaign
        finally:
            await db.dispose()

    campaign = asyncio.run(review())
    done = cli("review", "export", campaign, "--format", "csv")
    assert done.code == 0, done.err
    rows = list(csv.DictReader(io.StringIO(done.out)))
    assert {(r["person"], r["decision"], r["outcome"]) for r in rows} == {
        ("bob@example.com", "remove", "removed"), ("alice@example.com", "keep", "kept")}
    bob = next(r for r in rows if r["person"] == "bob@example.com")
    assert bob["decided_by"] == "carol@example.com" and bob["decided_at"]
    assert bob["reason"].startswith("'="), "a reason cannot run as a spreadsheet formula"
    lines = cli("review", "export", campaign, "--format", "jsonl").out.splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["campaign"] == campaign
    missing = cli("review", "export", "nope42")
    assert missing.code == 1 and "no access review" in missing.err


def test_a_failing_command_prints_its_one_error_and_nothing_else(tmp_path: Path) -> None:
    """A newcomer's second command (the development key file exists by then) that fails:
    stderr is the error, not a log line about the key before it."""
    assert run_pimbot(["db", "upgrade"], tmp_path).returncode == 0  # creates the key file
    failed = run_pimbot(["review", "export", "nope", "--format", "csv"], tmp_path)
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.strip().splitlines() == [
        "there is no access review 'nope' (its id was shown when it started)"]
