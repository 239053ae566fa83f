"""Start-up imports only what a command uses: every `pimbot` process (and every test that
spawns one) pays about a CPU-second for SQLAlchemy, Alembic, asyncpg and the adapters, so
``--help`` loads none of them and ``pimbot run`` loads Alembic only to migrate, asyncpg only
for a PostgreSQL database or provider, and Slack / Teams only when they are mounted; aiohttp
(~0.3 CPU-s with the TLS contexts it builds at import) only for the HTTP server, a webhook
or Microsoft provider, or a checkpoint URL: never for the console or the audit commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from server_process import clean_env

HEAVY = ("sqlalchemy", "alembic", "mako", "asyncpg", "aiohttp", "pydantic", "slack_sdk",
         "slack_bolt", "botbuilder")


def loaded_after(statement: str, tmp_path: Path | None = None, stdin: str = "") -> set[str]:
    """The HEAVY top-level packages a fresh interpreter has loaded after ``statement``
    (run in ``tmp_path`` with a clean pimbot environment when one is given)."""
    top = "{m.split('.')[0] for m in sys.modules}"
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted({top} & {set(HEAVY)!r})))"
    place = {} if tmp_path is None else {"cwd": tmp_path, "env": clean_env(
        tmp_path, PIMBOT_ADAPTERS="console")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          input=stdin, check=True, timeout=60, **place)  # type: ignore[call-overload]
    return set(json.loads(done.stdout.splitlines()[-1]))


def command(*args: str) -> str:
    """A statement running ``pimbot ARGS`` in-process; its own output is dropped."""
    return ("import contextlib, io\nfrom pimbot_server.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    code = main({list(args)!r})\nassert code == 0, code")


def test_the_cli_module_loads_no_heavy_package() -> None:
    assert loaded_after("import pimbot_server.cli") == set()


def test_pimbot_help_loads_no_heavy_package() -> None:
    statement = ("import contextlib, io\nfrom pimbot_server.cli import main\n"
                 "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):"
                 "\n    main(['--help'])")
    assert loaded_after(statement) == set()


def test_a_run_loads_neither_alembic_nor_asyncpg_nor_an_adapter_until_it_needs_one() -> None:
    loaded = loaded_after("import pimbot_server.app, pimbot.workflow.core, pimbot.providers, "
                          "pimbot.policy, pimbot.store.migrate")
    assert loaded & {"alembic", "mako", "asyncpg", "slack_sdk", "slack_bolt", "botbuilder"} == set()


def test_the_console_and_the_audit_commands_load_no_http_client(tmp_path: Path) -> None:
    console = loaded_after(command("run"), tmp_path,
                           stdin="as bob@example.com\nactivate prod-db-admin for 1h reason x\n")
    assert "aiohttp" not in console and "sqlalchemy" in console
    for args in (("audit", "verify"), ("audit", "export")):
        assert "aiohttp" not in loaded_after(command(*args), tmp_path), args


def test_the_listener_loads_neither_sqlalchemy_nor_the_policy_nor_the_core() -> None:
    """What ``pimbot run`` has imported when it binds its port (``pimbot_server.launch``
    binds it before importing anything else): aiohttp, and none of the store, the policy
    (PyYAML, pydantic) or the core."""
    statement = "import pimbot_server.cli, pimbot_server.launch"
    assert loaded_after(statement) == {"aiohttp"}
    pimbot = "{m for m in sys.modules if m.split('.')[0] in ('pimbot', 'yaml', 'pydantic')}"
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted({pimbot})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    heavy = {m for m in loaded if m.startswith(("pimbot.store", "pimbot.policy", "pimbot.workflow",
                                                "pimbot.scheduling", "yaml", "pydantic"))}
    assert heavy == set(), heavy
