"""Every hint pimbot prints ("try: …") that is a command is one the real grammar accepts.

Two nets: every hint written in the source of the workflow and the domain (a string, an
f-string with sample values put in, either side of a conditional) is parsed; and the hint
builder that the rest use (``activation_example``) gives, for roles of every shape, a line
that parses to what that role requires. ``tests/workflow/test_hints_work.py`` types the hints
a person is shown and checks they are accepted.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from pimbot.commands import VERBS, parse
from pimbot.commands import model as m
from pimbot.domain.examples import activation_example
from pimbot.domain.model import BreakglassRule, Role

SRC = Path(__file__).resolve().parents[1] / "src" / "pimbot"
SCANNED = ("workflow", "domain")
# What an f-string's placeholder stands for, by a word in its expression (first match wins).
SAMPLES = (
    ("kind", "eligible"), ("email", "bob@example.com"), ("duration", "1h"), ("room", "30m"),
    ("amount", "1h"), ("limit", "4h"), ("join", "prod-db-admin"), ("role", "prod-db-admin"),
    ("id", "abc234"), ("waiting", "abc234"), ("CODE_HINT", "123456"),
    ("close", "bob@example.com"),
)


def _hint_nodes(tree: ast.AST) -> list[ast.expr]:
    """The expressions passed as a hint: ``PimError``'s third argument, ``_error``'s second,
    a ``hint=`` keyword, or an assignment to a variable called ``hint``."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            position = {"PimError": 2, "_error": 1}.get(name)
            if position is not None and len(node.args) > position:
                found.append(node.args[position])
            found.extend(k.value for k in node.keywords if k.arg == "hint")
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "hint" for t in node.targets):
            found.append(node.value)
    return found


def _texts(node: ast.expr) -> list[str] | None:
    """The strings a hint expression can be, or None when it is not written out here (a
    variable or a call: checked where it is built)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _texts(node.body), _texts(node.orelse)
        return None if body is None or orelse is None else body + orelse
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
                continue
            assert isinstance(value, ast.FormattedValue)
            source = ast.unparse(value.value)
            sample = next((s for word, s in SAMPLES if word in source), None)
            assert sample is not None, f"add a sample for {{{source}}} to SAMPLES"
            parts.append(sample)
        return ["".join(parts)]
    return None


def written_hints() -> list[tuple[str, str]]:
    hints = []
    for folder in SCANNED:
        for path in sorted((SRC / folder).rglob("*.py")):
            for node in _hint_nodes(ast.parse(path.read_text())):
                for text in _texts(node) or []:
                    hints.append((f"{path.relative_to(SRC)}:{node.lineno}", text))
    return hints


HINTS = written_hints()
COMMANDS = [(where, text) for where, text in HINTS if text.split(" ", 1)[0] in VERBS]


def test_the_scan_finds_the_hints() -> None:
    assert len(COMMANDS) >= 30, COMMANDS  # the net has not come loose from the source
    assert any(text == "pending" for _, text in COMMANDS)


@pytest.mark.parametrize(("where", "hint"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_written_hint_that_is_a_command_parses(where: str, hint: str) -> None:
    parse(hint)


ROLE = Role(name="prod-db-admin", description="", provider="demo",
            max_duration=timedelta(hours=4), default_duration=timedelta(hours=1))
SHAPES = {
    "plain": ROLE,
    "short": replace(ROLE, max_duration=timedelta(minutes=30)),
    "ticket": replace(ROLE, require_ticket=True),
    "ticket pattern": replace(ROLE, require_ticket="^(INC|CHG)-[0-9]+$"),
    "odd pattern": replace(ROLE, require_ticket="^JIRA-[0-9]+$"),
    "mfa": replace(ROLE, require_mfa=True),
    "everything": replace(ROLE, require_mfa=True, require_ticket="^CHG-[0-9]+$",
                          max_duration=timedelta(minutes=20)),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_an_activation_example_gives_what_the_role_requires(shape: str) -> None:
    role = SHAPES[shape]
    command = parse(activation_example(role))
    assert isinstance(command, m.Activate)
    assert command.role == role.name and command.reason
    assert command.duration is not None and command.duration <= role.max_duration
    assert (command.ticket is not None) == (role.require_ticket is not False)
    if shape == "ticket pattern":
        assert command.ticket == "INC-42"
    if shape == "everything":
        assert command.ticket == "CHG-42"
    assert (command.code is not None) == role.require_mfa


def test_a_breakglass_example_stays_within_its_own_cap() -> None:
    role = replace(ROLE, breakglass=BreakglassRule(allowed=True,
                                                   max_duration=timedelta(minutes=15)))
    command = parse(activation_example(role, verb="breakglass"))
    assert isinstance(command, m.Breakglass)
    assert command.duration == timedelta(minutes=15) and command.code and command.reason


def test_an_example_at_a_time_parses_with_it() -> None:
    command = parse(activation_example(ROLE, at="tomorrow 09:00"))
    assert isinstance(command, m.Activate) and command.at == "tomorrow 09:00"
