"""What people type, as pimbot keeps and suggests it back: a reason written into a hint reads
back the same, a code inside a text is refused without being echoed, and nothing invisible
is kept (``pimbot.domain.typed_text``, ``pimbot.commands.writer``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pimbot.commands import CodeInText, UnitlessDuration, parse
from pimbot.commands import model as m
from pimbot.commands.writer import free_text, word
from pimbot.domain.errors import PimError
from pimbot.domain.typed_text import kept

THIRTY_MINUTES = timedelta(minutes=30)
QUOTED_REASONS = [
    'restore "the" backup',
    '"the" backup',
    '"quoted" for real',  # a quotation then a clause word: taken literally only when quoted
    "it's 'fine' for now",
    "'single' for x",
    "“curly” for it",
    "ends with a quote\"",
    "for 1h",
    "restore code 1234567",  # seven digits: not a code
]


@pytest.mark.parametrize("reason", QUOTED_REASONS)
def test_a_reason_written_into_a_hint_reads_back_the_same(reason: str) -> None:
    written = free_text(reason)
    assert written is not None
    command = parse(f"activate x for 1h ticket INC-1 reason {written}")
    assert isinstance(command, m.Activate) and command.reason == reason, written


typed_reasons = st.text(st.characters(exclude_categories=["Cs"]), min_size=1)


@settings(max_examples=300, deadline=None)
@given(typed_reasons, st.booleans())
@example('"a" for b', False)
def test_every_reason_typed_is_written_back_to_read_the_same(typed: str, quoted: bool) -> None:
    line = f'activate x reason "{typed}"' if quoted else f"activate x reason {typed}"
    try:
        command = parse(line)
    except CodeInText:
        return
    except PimError:  # another mistake in the line: nothing kept to write
        return
    assert isinstance(command, m.Activate) and command.reason
    if len(command.reason.splitlines()) > 1:
        return  # several lines: the hint keeps the placeholder (below)
    written = free_text(command.reason)
    assert written is not None, command.reason
    assert parse(f"activate x for 1h reason {written}") == \
        m.Activate("x", timedelta(hours=1), command.reason, code=command.code)


def test_a_text_no_line_can_hold_keeps_the_placeholder() -> None:
    # from a form, never from a line: a quotation, a clause word, both kinds of quotes
    assert free_text('"a" for b \'c\' for d') is None
    assert free_text("line one\nline two") is None  # a hint is one line


def test_a_ticket_with_a_space_is_written_quoted() -> None:
    assert word("INC-42") == "INC-42"
    assert parse(f"activate x ticket {word('INC 42')}") == m.Activate("x", ticket="INC 42")


@pytest.mark.parametrize("reason", ['restore "the" backup', "it's \"both\" 'kinds' for x"])
def test_a_duration_without_a_unit_hints_the_command_with_the_reason_typed(
        reason: str) -> None:
    with pytest.raises(UnitlessDuration) as caught:
        parse(f"activate prod-db for 30 ticket INC-7 reason {free_text(reason)}")
    hinted = parse(caught.value.hint or "")
    assert hinted == m.Activate("prod-db", THIRTY_MINUTES, reason, "INC-7"), caught.value.hint


CODES_IN_TEXT = [
    ("activate x for 30m reason deploy code 482913 now please",
     m.Activate("x", THIRTY_MINUTES, "deploy now please")),
    ('activate x reason "restore code 482913"', m.Activate("x", reason="restore")),
    ("activate x code 111111 reason fix code 482 913", m.Activate("x", reason="fix",
                                                                  code="111111")),
    ("activate x reason it is CODE: 482913 ok", m.Activate("x", reason="it is ok")),
    ("deny 7kq2xm4p reason bad code 482913", m.Deny("7kq2xm4p", "bad")),
    ("approve 7kq2xm4p comment fine code 482913 go", m.Approve("7kq2xm4p", "fine go")),
    ("breakglass x reason db code 482913 down", m.Breakglass("x", "db down")),
    ("review remove 7kq2xm4p reason code 482913 left", m.ReviewRemove("7kq2xm4p", "left")),
]


@pytest.mark.parametrize(("typed", "meant"), CODES_IN_TEXT, ids=[t for t, _ in CODES_IN_TEXT])
def test_a_code_inside_a_text_is_refused_and_never_echoed(typed: str, meant: m.Command) -> None:
    with pytest.raises(CodeInText) as caught:
        parse(typed)
    error = caught.value
    assert "authenticator code" in error.message and "Nothing was changed" in error.message
    said = f"{error.message} {error.hint}"
    assert "482913" not in said and "482 913" not in said and "111111" not in said, said
    assert error.meant == meant  # what the hint is written from: all but the code
    assert parse(error.hint or "") == _placeholder_code(meant), error.hint


def _placeholder_code(command: m.Command) -> m.Command:
    """``command`` with a code given written as the placeholder (as hints write it)."""
    if isinstance(command, m.Activate) and command.code is not None:
        return m.Activate(command.role, command.duration, command.reason, command.ticket,
                          "123456", command.at)
    return command


def test_a_code_typed_last_is_still_the_code_clause() -> None:
    assert parse("activate x reason restore code 123456") == \
        m.Activate("x", reason="restore", code="123456")


def test_invisible_characters_are_dropped_and_controls_shown() -> None:
    typed = parse("activate x reason evil\u202etxt.exe\u2066 \u200bnow\u00ad \x1b[2J")
    assert isinstance(typed, m.Activate)
    assert typed.reason == "eviltxt.exe now \ufffd[2J"
    assert kept("tab\tand\nline") == "tab\tand\nline"
    assert kept("שלום עולם") == "שלום עולם"  # right-to-left text itself is kept
