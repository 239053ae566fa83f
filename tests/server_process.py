"""Run the installed ``pimbot`` command as a real subprocess, in a clean environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

POLICY = """\
admins: [sec-lead@example.com]
auditors: [audit@example.com]
groups:
  dba-leads: [alice@example.com]
providers:
  nothing: {type: noop}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: nothing
    max_duration: 4h
    default_duration: 1h
    require_mfa: false
    require_justification: true
    approval: {required: true, approvers: ["group:dba-leads"], min_approvals: 1}
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible}
"""

_FOREIGN_PREFIXES = ("PIMBOT_", "SLACK_", "MICROSOFT_")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pimbot_command() -> list[str]:
    script = Path(sys.executable).with_name("pimbot")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pimbot_server.cli"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without pimbot/Slack/Teams settings, plus a temp database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    policy = tmp_path / "policy.yaml"
    if not policy.exists():
        policy.write_text(POLICY, encoding="utf-8")
    env["PIMBOT_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'pimbot.db'}"
    env["PIMBOT_POLICY"] = str(policy)
    env.update(extra)
    return env


def run_pimbot(
    args: list[str],
    tmp_path: Path,
    *,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*pimbot_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(env) if env is not None else clean_env(tmp_path),
        timeout=timeout,
        check=False,
    )
