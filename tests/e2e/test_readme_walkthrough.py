"""The README's console walkthrough works exactly as written, on the bundled example policy.

The transcripts marked ``<!-- walkthrough`` in README.md are typed into ``pimbot run`` (the
lines after each ``EMAIL>`` prompt), and every other line they show must appear in the real
output, in the same order (request ids, times and TOTP keys aside; ``…`` marks lines left
out). Those marked ``<!-- mfa walkthrough`` are typed the same way into a console of their
own, each 6-digit code in them replaced by one the README's ``pyotp`` one-liner prints for
the key pimbot showed, as a newcomer without an authenticator app would do.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

from console_process import ConsoleRun, console_env, open_console, run_console

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_PROMPT = re.compile(r"^\S+@\S+> (.*)$")
_PIPE = re.compile(r"^printf '(.*)' \| \.venv/bin/pimbot run$", re.MULTILINE)
_REQUEST_ID = re.compile(r"(?<=[Rr]equest )[a-z0-9]{6,8}\b")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
_KEY = re.compile(r"(?<=Key: )[A-Z2-7]{16,}\b")
_TOTP_LINER = re.compile(r"^\.venv/bin/python -c '.*pyotp.*'$", re.MULTILINE)
_CODE = re.compile(r"(?:(?<=\bconfirm )|(?<=\bcode ))\d{6}\b")
_VENV_PYTHON = ".venv/bin/python"


def walkthrough(readme: str, mark: str = "<!-- walkthrough") -> tuple[list[str], list[str]]:
    """(what to type, what the README says appears) from the marked transcripts, in order."""
    typed: list[str] = []
    shown: list[str] = []
    lines = iter(readme.splitlines())
    for line in lines:
        if not line.startswith(mark):
            continue
        assert next(lines) == "```text", "a walkthrough mark must come right before ```text"
        for body in lines:
            if body == "```":
                break
            if prompt := _PROMPT.match(body):
                typed.append(prompt.group(1))
            elif body.strip() != "…":
                shown.append(normalized(body))
    assert typed and shown, "README.md has no marked walkthrough"
    return typed, shown


def normalized(line: str) -> str:
    return _KEY.sub("KEY", _TIME.sub("TIME", _REQUEST_ID.sub("ID", line.rstrip())))


def first_missing(expected: list[str], run: ConsoleRun) -> str | None:
    """The first expected line not found after the previous one, or None when all are."""
    actual = iter(normalized(line) for line in run.out)
    for line in expected:
        if not any(line == got for got in actual):
            return line
    return None


CARRY_ON = [  # a few rows of the README's "Carry on with" table, after the walkthrough
    "as bob@example.com",
    "status",
    "deactivate prod-db-admin",
    "as audit@example.com",
    "audit bob@example.com",
]


async def test_the_readme_walkthrough_reaches_a_first_approved_activation(
    tmp_path: Path,
) -> None:
    readme = README.read_text(encoding="utf-8")
    typed, shown = walkthrough(readme)
    [piped] = _PIPE.findall(readme)
    newcomer, pipe = tmp_path / "newcomer", tmp_path / "pipe"  # no pimbot.yaml in either
    newcomer.mkdir()
    pipe.mkdir()

    async def piped_twice() -> list[ConsoleRun]:  # the second on the first one's pimbot.db
        script = piped.replace("\\n", "\n")
        return [await run_console(pipe, script, console_env(pipe, None)) for _ in range(2)]

    run, piped_runs = await asyncio.gather(
        run_console(newcomer, "\n".join(typed + CARRY_ON) + "\n", console_env(newcomer, None)),
        piped_twice(),
    )

    assert run.code == 0, run.err
    assert first_missing(shown, run) is None, (first_missing(shown, run), run.text)
    assert "Your activation of prod-db-admin: active" in run.card_titles("bob@example.com")
    assert re.search(r"• prod-db-admin: active, \S+ left", run.text), run.text  # status
    run.answer("Deactivated prod-db-admin")
    assert "grant.revoked prod-db-admin" in run.text  # the auditor sees it all
    for piped_run in piped_runs:  # the same every time: nothing left from the run before
        assert piped_run.code == 0, piped_run.err
        assert "Your activation of staging-deploy: active" in \
            piped_run.card_titles("bob@example.com"), piped_run.text
        piped_run.answer("• staging-deploy: active")
        piped_run.answer("Deactivated staging-deploy")
        assert "already" not in piped_run.text, piped_run.text


async def code_from_readme(one_liner: str, key: str) -> str:
    """Run the README's TOTP one-liner as written, in the repository (where ``make install``
    put the venv), answering its ``Key:`` prompt with ``key``: the code it prints."""
    command = one_liner
    if not (ROOT / _VENV_PYTHON).exists():  # tests run by another interpreter: use it
        command = one_liner.replace(_VENV_PYTHON, shlex.quote(sys.executable), 1)
    process = await asyncio.create_subprocess_shell(
        command, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(f"{key}\n".encode())
    assert process.returncode == 0, err.decode()
    code = out.decode().split()[-1]  # after its "Key: " prompt
    assert re.fullmatch(r"\d{6}", code), out
    return code


async def test_the_readme_mfa_step_enrols_and_activates_a_role_that_needs_a_code(
    tmp_path: Path,
) -> None:
    readme = README.read_text(encoding="utf-8")
    typed, shown = walkthrough(readme, "<!-- mfa walkthrough")
    [one_liner] = _TOTP_LINER.findall(readme)
    assert sum(bool(_CODE.search(line)) for line in typed) == 2, typed  # confirm, activate
    key = ""
    async with open_console(tmp_path, console_env(tmp_path, None)) as console:
        for line in typed:
            if _CODE.search(line):
                key = key or _KEY.findall(await console.read_until("Key: "))[0]
                line = _CODE.sub(await code_from_readme(one_liner, key), line)
            await console.type(line)
        run = await console.finish()

    assert run.code == 0, run.err
    assert first_missing(shown, run) is None, (first_missing(shown, run), run.text)
    titles = run.card_titles("bob@example.com")
    assert titles[-1] == "Your activation of prod-logs: active", titles
    assert "needs your authenticator code" in run.text, "the role asks before the code"
    assert "refused" not in run.text.lower() and "wrong" not in run.text.lower(), run.text
