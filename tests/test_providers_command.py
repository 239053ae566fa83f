"""The command provider runs an argv (never a shell) with the PIMBOT_* environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pimbot.domain.model import ProviderConfig
from pimbot.ports import Provider
from pimbot.providers import ProviderError, build_providers
from providers_support import command_argv, command_log, make_target


def command(
    grant: list[str],
    revoke: list[str] | None = None,
    check: list[str] | None = None,
    env: dict[str, str] | None = None,
    **settings: object,
) -> Provider:
    config = ProviderConfig(
        "script",
        "command",
        {"grant": grant, "revoke": revoke or grant, "check": check or grant, **settings},
    )
    return build_providers({"script": config}, env or {})["script"]


def python(tmp_path: Path, code: str) -> list[str]:
    script = tmp_path / f"snippet_{abs(hash(code))}.py"
    script.write_text(code)
    return [sys.executable, str(script)]


async def test_the_command_sees_the_pimbot_variables(tmp_path: Path) -> None:
    provider = command(command_argv(tmp_path))
    target = make_target(grant={"role": "app_admin", "schema": "billing"})
    ref = await provider.grant(target)
    await provider.revoke(target, ref)

    grant_run, revoke_run = command_log(tmp_path)
    env = grant_run["env"]
    assert env["PIMBOT_ACTION"] == "grant"
    assert env["PIMBOT_USER"] == "bob@example.com"
    assert env["PIMBOT_ROLE"] == "prod-db-admin"
    assert env["PIMBOT_ACTIVATION_ID"] == target.activation_id
    assert env["PIMBOT_EXPIRES_AT"] == "2026-11-02T10:00:00Z"
    assert json.loads(env["PIMBOT_GRANT"]) == {"role": "app_admin", "schema": "billing"}
    assert ref == f"ref-{target.activation_id}"
    assert revoke_run["env"]["PIMBOT_ACTION"] == "revoke"
    assert revoke_run["env"]["PIMBOT_REF"] == ref


async def test_pimbot_secrets_stay_out_of_the_command(tmp_path: Path) -> None:
    env = {"PATH": os.defpath, "SLACK_BOT_TOKEN": "xoxb-secret", "AWS_PROFILE": "pim"}
    provider = command(command_argv(tmp_path), env=env, pass_env=["AWS_PROFILE"])
    await provider.grant(make_target())
    [run] = command_log(tmp_path)
    assert "SLACK_BOT_TOKEN" not in run["env"]
    assert run["env"]["AWS_PROFILE"] == "pim"
    assert run["env"]["PATH"] == os.defpath


async def test_arguments_are_never_interpreted_by_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a shell would have run `touch pwned`
    tricks = ["; touch pwned", "$(touch pwned)", "`touch pwned`", "*"]
    provider = command(command_argv(tmp_path, *tricks))
    await provider.grant(make_target("$(touch pwned)@example.com"))
    [run] = command_log(tmp_path)
    assert run["argv"] == tricks
    assert run["env"]["PIMBOT_USER"] == "$(touch pwned)@example.com"
    assert not (tmp_path / "pwned").exists()


async def test_a_failing_command_raises_with_its_exit_code_and_last_error_line(
    tmp_path: Path,
) -> None:
    failing = python(
        tmp_path,
        "import sys\nprint('working', file=sys.stderr)\nsys.exit('grant refused: no such user')\n",
    )
    provider = command(failing)
    with pytest.raises(ProviderError) as raised:
        await provider.grant(make_target())
    assert str(raised.value) == "command script: grant exited with 1: grant refused: no such user"


async def test_check_exit_codes_other_than_0_and_1_are_errors(tmp_path: Path) -> None:
    provider = command(command_argv(tmp_path), check=python(tmp_path, "import sys\nsys.exit(2)\n"))
    with pytest.raises(ProviderError, match="check exited with 2"):
        await provider.check(make_target())


async def test_a_hanging_command_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = python(
        tmp_path,
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(3600)\n",
    )
    provider = command(hang, timeout=1)
    with pytest.raises(ProviderError, match="revoke timed out after 1s"):
        await provider.revoke(make_target(), None)
    if pid_file.exists():  # a slow machine may kill it before it wrote its pid
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)


async def test_a_missing_program_is_a_provider_error(tmp_path: Path) -> None:
    provider = command([str(tmp_path / "no-such-program")])
    with pytest.raises(ProviderError, match="could not start"):
        await provider.grant(make_target())
