"""Start-up imports only what a command uses: every `pimbot` process (and every test that
spawns one) pays about a CPU-second for SQLAlchemy, Alembic, asyncpg and the adapters, so
``--help`` loads none of them and ``pimbot run`` loads Alembic only to migrate, asyncpg only
for a PostgreSQL database or provider, and Slack / Teams only when they are mounted."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "mako", "asyncpg", "aiohttp", "pydantic", "slack_sdk",
         "slack_bolt", "botbuilder")


def loaded_after(statement: str) -> set[str]:
    """The HEAVY top-level packages a fresh interpreter has loaded after ``statement``."""
    top = "{m.split('.')[0] for m in sys.modules}"
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted({top} & {set(HEAVY)!r})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    return set(json.loads(done.stdout))


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
