"""Properties of the grammar: it never crashes, and valid activate lines round-trip."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pimbot.commands import model as m
from pimbot.commands import parse
from pimbot.commands.catalog import TOPICS
from pimbot.domain.durations import format_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.typed_text import code_in, kept

PARSE_CODES = {ErrorCode.PARSE, ErrorCode.DURATION, ErrorCode.UNKNOWN_COMMAND}
KEYWORDS = {"for", "reason", "ticket", "code", "at", "comment", "until", "since"}
HELP_WORDS = {"?", "-h", "--help", "help"}
QUOTES = "\"'“”‘’"
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

GRAMMAR_WORDS = [
    *TOPICS,
    *KEYWORDS,
    "pim", "/pim", "enroll", "confirm", "status", "reset", "start", "eligible", "active",
    "prod-db", "1h", "1h30m", "0m", "2", "hours", "123456", "123", "456", "12345", "7kq2xm",
    "r0l1", "14:30", "25:00", "tomorrow", "09:00", "2027-03-31", "in", "ago", "7d",
    "bob@example.com", "<@U1|bob smith>", "<at>Bob</at>", "<mailto:a@b.io|a@b.io>",
    '"', "'", "“", "”", '"fix it"', "“fix”", "?", "--help", "INC-42", "#7kq2xm", "",
]  # fmt: skip
SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u200b", ""])
WORDS = st.one_of(st.sampled_from(GRAMMAR_WORDS), st.text(max_size=8))
near_valid = st.lists(st.tuples(SEPARATORS, WORDS), max_size=14).map(
    lambda pairs: "".join(sep + word for sep, word in pairs)
)


def check_outcome(text: str) -> None:
    try:
        command = parse(text)
    except PimError as error:
        assert error.code in PARSE_CODES
        assert error.message
        assert "\n" not in error.message
        assert error.hint
        parse(error.hint)
    else:
        assert isinstance(command, m.Command)


@settings(max_examples=250, deadline=None)
@given(st.text(max_size=4000))
def test_any_text_gives_a_command_or_a_pim_error(text: str) -> None:
    check_outcome(text)


@settings(max_examples=250, deadline=None)
@given(near_valid)
def test_near_valid_text_gives_a_command_or_a_pim_error(text: str) -> None:
    check_outcome(text)


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
roles = st.builds(
    str.__add__, st.sampled_from(LETTERS), st.text(LETTERS + "0123456789._-", max_size=30)
).filter(lambda role: role.lower() not in KEYWORDS | HELP_WORDS)
durations = st.integers(min_value=1, max_value=10_000_000).map(lambda s: timedelta(seconds=s))
tickets = st.builds("INC-{}".format, st.integers(min_value=1, max_value=999_999))
codes = st.integers(min_value=0, max_value=999_999).map("{:06d}".format)
whens = st.sampled_from(
    ["14:30", "9:05", "tomorrow 09:00", "today 17:00", "2027-03-31", "2027-03-31T09:00Z",
     "2027-03-31 09:00", "in 2h", "+90m", "2027-03-31T09:00:00+02:00"]
)  # fmt: skip
reason_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=INVISIBLE), min_size=1
).filter(lambda text: text.strip() != "" and kept(text) == text and code_in(text) is None)
# (an unquoted reason ending in "code 123456" gives that code clause: tests/test_grammar.py;
# a code elsewhere in it, or an invisible character, is refused or dropped: test_typed_text)


maybe_role, maybe_ticket = st.none() | roles, st.none() | tickets
maybe_code, maybe_at = st.none() | codes, st.none() | whens
maybe_duration, maybe_reason = st.none() | durations, st.none() | reason_text
prefixes = st.sampled_from(["", "pim ", "/pim ", "PIM  "])
verbs = st.sampled_from(["activate", "Activate", "ACTIVATE"])
positions = st.integers(min_value=0, max_value=4)


@st.composite
def activate_lines(draw: st.DrawFn) -> tuple[str, m.Activate]:
    role = draw(maybe_role)
    duration = draw(maybe_duration)
    ticket = draw(maybe_ticket)
    code = draw(maybe_code)
    at = draw(maybe_at)
    reason = draw(maybe_reason)
    clauses = [
        f"{word} {value}"
        for word, value in [
            ("for", duration and format_duration(duration)),
            ("ticket", ticket),
            ("code", code),
            ("at", at),
        ]
        if value is not None
    ]
    clauses = draw(st.permutations(clauses))
    if reason is not None:
        quotable = not any(quote in reason for quote in QUOTES)
        if quotable and draw(st.booleans()):
            position = min(draw(positions), len(clauses))
            clauses.insert(position, f'reason "{reason}"')
        else:
            reason = reason.lstrip()
            if reason[0] in QUOTES:
                reason = "x" + reason
            clauses.append(f"reason {reason}")
        reason = reason.strip()
    prefix = draw(prefixes)
    verb = draw(verbs)
    line = " ".join([f"{prefix}{verb}", *([role] if role else []), *clauses])
    return line, m.Activate(role, duration, reason, ticket, code, at)


@settings(max_examples=250, deadline=None)
@given(activate_lines())
def test_valid_activate_lines_round_trip(case: tuple[str, m.Activate]) -> None:
    line, expected = case
    assert parse(line) == expected
