"""The README's console walkthrough works exactly as written, on the bundled example policy.

The transcripts marked ``<!-- walkthrough`` in README.md are typed into ``pimbot run`` (the
lines after each ``EMAIL>`` prompt), and every other line they show must appear in the real
output, in the same order (request ids and times aside; ``…`` marks lines left out).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from console_process import ConsoleRun, console_env, run_console

README = Path(__file__).resolve().parents[2] / "README.md"
_PROMPT = re.compile(r"^\S+@\S+> (.*)$")
_PIPE = re.compile(r"^printf '(.*)' \| \.venv/bin/pimbot run$", re.MULTILINE)
_REQUEST_ID = re.compile(r"(?<=[Rr]equest )[a-z0-9]{6,8}\b")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def walkthrough(readme: str) -> tuple[list[str], list[str]]:
    """(what to type, what the README says appears) from the marked transcripts, in order."""
    typed: list[str] = []
    shown: list[str] = []
    lines = iter(readme.splitlines())
    for line in lines:
        if not line.startswith("<!-- walkthrough"):
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
    return _TIME.sub("TIME", _REQUEST_ID.sub("ID", line.rstrip()))


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
