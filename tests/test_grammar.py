"""The chat grammar, table-driven: every command, clause orders, quoting and every error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pimbot.commands import UserRef, UserRefKind, help_text, parse, parse_user, suggest
from pimbot.commands import model as m
from pimbot.commands.catalog import TOPICS
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.model import AssignmentType

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
BOB = UserRef(UserRefKind.EMAIL, "bob@example.com")

VALID: list[tuple[str, m.Command]] = [
    # prefixes, case and whitespace
    ("", m.Help()),
    ("pim", m.Help()),
    ("/pim", m.Help()),
    ("help", m.Help()),
    ("  /PIM   Help  ", m.Help()),
    ("help activate", m.Help("activate")),
    ("pim help mfa confirm", m.Help("mfa")),
    ("help review start", m.Help("review")),
    ("activate ?", m.Help("activate")),
    ("deny --help", m.Help("deny")),
    ("roles", m.Roles()),
    ('"Roles"', m.Roles()),
    ("Pim ROLES", m.Roles()),
    ("status", m.Status()),
    ("pending", m.Pending()),
    ("reviews", m.Reviews()),
    # activate: everything optional, clauses in any order
    ("activate", m.Activate()),
    ("/pim activate", m.Activate()),
    ("activate prod-db", m.Activate("prod-db")),
    ("activate Prod-DB", m.Activate("Prod-DB")),
    ("activate for 1h", m.Activate(duration=H)),
    ("activate reason outage", m.Activate(reason="outage")),
    ("activate prod-db for 1h30m", m.Activate("prod-db", 90 * MIN)),
    ("activate prod-db FOR 2 hours", m.Activate("prod-db", 2 * H)),
    (
        'activate prod-db for 1h code 123456 reason restore "for" loop',
        m.Activate("prod-db", H, 'restore "for" loop', code="123456"),
    ),
    (
        'activate prod-db reason "fix it" for 2h',
        m.Activate("prod-db", 2 * H, "fix it"),
    ),
    (
        "activate prod-db reason 'fix it' ticket INC-42 code 123456 at 14:30",
        m.Activate("prod-db", None, "fix it", "INC-42", "123456", "14:30"),
    ),
    (
        "activate prod-db reason “smart quotes” for 30m",
        m.Activate("prod-db", 30 * MIN, "smart quotes"),
    ),
    (
        "activate prod-db ticket INC-1 at tomorrow 09:00 for 8h reason release night",
        m.Activate("prod-db", 8 * H, "release night", "INC-1", None, "tomorrow 09:00"),
    ),
    (
        "activate prod-db at 2027-03-31T09:00Z",
        m.Activate("prod-db", at="2027-03-31T09:00Z"),
    ),
    ("activate prod-db at 2027-03-31 09:00", m.Activate("prod-db", at="2027-03-31 09:00")),
    ("activate prod-db at in 2h", m.Activate("prod-db", at="in 2h")),
    ("activate prod-db code 123 456", m.Activate("prod-db", code="123456")),
    # reason: the rest of the line, as typed
    ("activate x reason don't for 2h", m.Activate("x", reason="don't for 2h")),
    ("activate x reason 'cause it broke", m.Activate("x", reason="'cause it broke")),
    ('activate x reason "a" b for 1h', m.Activate("x", reason='"a" b for 1h')),
    # ... except a code typed last: the code clause, never text shown to approvers
    ("activate x for 1h reason restore code 123456",
     m.Activate("x", H, "restore", code="123456")),
    ("activate x reason restore the backup code 123 456",
     m.Activate("x", reason="restore the backup", code="123456")),
    ("activate x reason exit code 137", m.Activate("x", reason="exit code 137")),
    # (a last 'code' and 4, 5, 7 or 8 digits is a mistyped code: refused, see below)
    # (a code anywhere else in a text is refused: tests/test_typed_text.py)
    ("approve 7kq2xm comment looks fine code 123456",
     m.Approve("7kq2xm", "looks fine", "123456")),
    ("breakglass x reason db down code 123456", m.Breakglass("x", "db down", None, "123456")),
    ("activate x reason <!channel> now", m.Activate("x", reason="<!channel> now")),
    ('activate "prod db" for 1h', m.Activate("prod db", H)),
    ("activate \u200bprod-db\u200b for 1h", m.Activate("prod-db", H)),
    ("activate\u00a0prod-db\tfor 1h\n", m.Activate("prod-db", H)),
    # single-argument commands
    ("deactivate prod-db", m.Deactivate("prod-db")),
    ("extend prod-db", m.Extend("prod-db")),
    ("extend prod-db for 30m", m.Extend("prod-db", 30 * MIN)),
    ("cancel 7kq2xm", m.Cancel("7kq2xm")),
    ("cancel #7KQ2XM", m.Cancel("7kq2xm")),
    ("cancel 7kq2xm4p", m.Cancel("7kq2xm4p")),  # ids are 8 characters; 6 stay valid
    ("approve 7KQ2XM4P comment ok", m.Approve("7kq2xm4p", "ok")),
    ("whois prod-db", m.Whois("prod-db")),
    # approve / deny
    ("approve 7kq2xm", m.Approve("7kq2xm")),
    ("approve 7kq2xm comment looks fine", m.Approve("7kq2xm", "looks fine")),
    ('approve 7kq2xm comment "ok" code 123456', m.Approve("7kq2xm", "ok", "123456")),
    ("approve 7kq2xm code 123456 comment go", m.Approve("7kq2xm", "go", "123456")),
    ("deny 7kq2xm reason not now", m.Deny("7kq2xm", "not now")),
    ("deny 7kq2xm reason “freeze”", m.Deny("7kq2xm", "freeze")),
    # mfa
    ("mfa enroll", m.MfaEnroll()),
    ("mfa enroll code 123456", m.MfaEnroll("123456")),
    ("MFA Status", m.MfaStatus()),
    ("mfa confirm 123456", m.MfaConfirm("123456")),
    ("mfa reset bob@example.com", m.MfaReset(BOB)),
    ("mfa reset <@U123ABC|bob>", m.MfaReset(UserRef(UserRefKind.MENTION, "U123ABC"))),
    ("mfa reset Bob Smith", m.MfaReset(UserRef(UserRefKind.NAME, "Bob Smith"))),
    ('mfa reset "Bob Smith"', m.MfaReset(UserRef(UserRefKind.NAME, "Bob Smith"))),
    # reviews
    ("review start prod-db", m.ReviewStart(("prod-db",))),
    ("review start a b c for 14d", m.ReviewStart(("a", "b", "c"), timedelta(days=14))),
    # assign / unassign
    (
        "assign bob@example.com prod-db eligible",
        m.Assign(BOB, "prod-db", AssignmentType.ELIGIBLE),
    ),
    (
        "assign <@U1|bob> prod-db active for 8h",
        m.Assign(UserRef(UserRefKind.MENTION, "U1"), "prod-db", AssignmentType.ACTIVE, 8 * H),
    ),
    (
        'assign "Bob Smith" prod-db ELIGIBLE until 2027-03-31',
        m.Assign(
            UserRef(UserRefKind.NAME, "Bob Smith"),
            "prod-db",
            AssignmentType.ELIGIBLE,
            until="2027-03-31",
        ),
    ),
    (
        "assign <mailto:Bob@Example.com|Bob@Example.com> prod-db active",
        m.Assign(BOB, "prod-db", AssignmentType.ACTIVE),
    ),
    (
        "assign <at>Bob Smith</at> prod-db active",
        m.Assign(UserRef(UserRefKind.NAME, "Bob Smith"), "prod-db", AssignmentType.ACTIVE),
    ),
    ("unassign bob@example.com prod-db", m.Unassign(BOB, "prod-db")),
    # audit
    ("audit", m.Audit()),
    ("audit prod-db", m.Audit("prod-db")),
    ("audit <@U1|bob> since 7d ago", m.Audit("<@U1>", "7d ago")),
    ("audit since yesterday", m.Audit(None, "yesterday")),
    ("audit Bob@Example.com since 2026-01-01", m.Audit("bob@example.com", "2026-01-01")),
    # breakglass
    ("breakglass prod-db reason outage", m.Breakglass("prod-db", "outage")),
    (
        "breakglass prod-db for 30m code 123456 reason outage INC-42",
        m.Breakglass("prod-db", "outage INC-42", 30 * MIN, "123456"),
    ),
    (
        'breakglass prod-db reason "db down" code 123456 for 1h',
        m.Breakglass("prod-db", "db down", H, "123456"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_valid_commands(text: str, expected: m.Command) -> None:
    assert parse(text) == expected


ERRORS: list[tuple[str, ErrorCode, str]] = [
    # unknown commands, with did-you-mean
    (
        "actvate prod-db",
        ErrorCode.UNKNOWN_COMMAND,
        "'actvate' is not a command. Did you mean 'activate'?",
    ),
    ("/pim aprove 7kq2xm", ErrorCode.UNKNOWN_COMMAND, "Did you mean 'approve'?"),
    ("frobnicate", ErrorCode.UNKNOWN_COMMAND, "'frobnicate' is not a command"),
    ('"activate now" prod-db', ErrorCode.UNKNOWN_COMMAND, "'activate now' is not a command"),
    ("help actvate", ErrorCode.UNKNOWN_COMMAND, "Did you mean 'activate'?"),
    ("help frobnicate", ErrorCode.UNKNOWN_COMMAND, "'frobnicate' is not a command"),
    ("mfa enrol", ErrorCode.UNKNOWN_COMMAND, "Did you mean 'mfa enroll'?"),
    ("mfa frob", ErrorCode.UNKNOWN_COMMAND, "'mfa frob' is not a command"),
    ("review begin prod-db", ErrorCode.UNKNOWN_COMMAND, "'review begin' is not a command"),
    # unknown words
    ("activate prod-db quickly", ErrorCode.PARSE, "unknown word 'quickly' after the role"),
    ("activate prod-db for 1h now", ErrorCode.PARSE, "unknown word 'now' after 'for 1h'"),
    ("activate prod-db reasn x", ErrorCode.PARSE, "Did you mean 'reason'?"),
    ("activate prod-db 1h", ErrorCode.PARSE, "write 'for 1h'"),
    ("activate prod-db 123456", ErrorCode.PARSE, "needs 'code' before it"),
    ("activate prod-db comment hi", ErrorCode.PARSE, "'activate' does not take 'comment'"),
    ("status now", ErrorCode.PARSE, "unknown word 'now' after 'status'"),
    ("roles all", ErrorCode.PARSE, "unknown word 'all' after 'roles'"),
    ("deactivate prod-db for 1h", ErrorCode.PARSE, "'deactivate' does not take 'for'"),
    ("whois prod-db staging-db", ErrorCode.PARSE, "unknown word 'staging-db' after the role"),
    ("cancel 7kq2xm please", ErrorCode.PARSE, "unknown word 'please' after the request id"),
    ("help activate now", ErrorCode.PARSE, "unknown word 'now'"),
    ("mfa enroll now", ErrorCode.PARSE, "unknown word 'now' after 'mfa enroll'"),
    ("unassign bob prod-db eligible", ErrorCode.PARSE, "unknown word 'eligible'"),
    ("audit Bob Smith", ErrorCode.PARSE, "unknown word 'Smith' after the person or role"),
    # durations
    ("activate prod-db for", ErrorCode.DURATION, "'for' needs a duration, like 1h30m"),
    ("activate prod-db for reason x", ErrorCode.DURATION, "'for' needs a duration"),
    ("activate prod-db for 1x", ErrorCode.DURATION, "'1x' is not a duration"),
    ("activate prod-db for 0m", ErrorCode.DURATION,
     "'0m' is zero: a duration must be at least 1 second, like 30m"),
    ("activate prod-db for -5m", ErrorCode.DURATION,
     "'-5m' is negative: a duration must be at least 1 second, like 30m"),
    ("extend prod-db for 0h0m", ErrorCode.DURATION, "'0h0m' is zero: a duration must be at"),
    ("extend prod-db for soon", ErrorCode.DURATION, "'soon' is not a duration"),
    ("review start prod-db for ever", ErrorCode.DURATION, "'ever' is not a duration"),
    # codes
    ("activate prod-db code", ErrorCode.PARSE, "'code' needs the 6-digit code"),
    ("activate prod-db code 12345", ErrorCode.PARSE, "'code' needs exactly 6 digits"),
    ("activate prod-db code 1234567", ErrorCode.PARSE, "'code' needs exactly 6 digits"),
    ("activate prod-db code abcdef", ErrorCode.PARSE, "'code' needs exactly 6 digits"),
    ("activate prod-db code １２３４５６", ErrorCode.PARSE, "'code' needs exactly 6 digits"),
    ("mfa confirm", ErrorCode.PARSE, "'mfa confirm' needs the 6-digit code"),
    ("mfa confirm 12", ErrorCode.PARSE, "'mfa confirm' needs exactly 6 digits"),
    ("approve 7kq2xm code 99", ErrorCode.PARSE, "'code' needs exactly 6 digits"),
    # clauses given twice, missing values
    ("activate prod-db for 1h for 2h", ErrorCode.PARSE, "'for' is given twice"),
    ('activate x reason "a" reason b', ErrorCode.PARSE, "'reason' is given twice"),
    ("activate x code 123456 code 654321", ErrorCode.PARSE, "'code' is given twice"),
    ("activate prod-db reason", ErrorCode.PARSE, "'reason' needs a text"),
    ('activate prod-db reason ""', ErrorCode.PARSE, "'reason' needs a text"),
    ("approve 7kq2xm comment", ErrorCode.PARSE, "'comment' needs a text"),
    ("activate prod-db ticket", ErrorCode.PARSE, "'ticket' needs a ticket id"),
    ("activate prod-db ticket for 1h", ErrorCode.PARSE, "'ticket' needs a ticket id"),
    # times
    ("activate prod-db at", ErrorCode.PARSE, "'at' needs a time"),
    ("activate prod-db at soon", ErrorCode.PARSE, "'soon' is not a time"),
    ("activate prod-db at 25:00", ErrorCode.PARSE, "'25:00' is not a time"),
    ("activate prod-db at tomorrow 25:00", ErrorCode.PARSE, "'tomorrow 25:00' is not a time"),
    ("activate prod-db at 2027-02-30", ErrorCode.PARSE, "'2027-02-30' is not a time"),
    ("audit since", ErrorCode.PARSE, "'since' needs a time"),
    ("audit since last week", ErrorCode.PARSE, "'last' is not a time"),
    ("assign bob prod-db eligible until", ErrorCode.PARSE, "'until' needs a date"),
    ("assign bob prod-db eligible until never", ErrorCode.PARSE, "'never' is not a time"),
    # missing required parts
    ("deactivate", ErrorCode.PARSE, "'deactivate' needs a role"),
    ("extend for 1h", ErrorCode.PARSE,
     "'extend' needs a role, like prod-db-admin before 'for'"),
    ("activate x reason exit code 1234567", ErrorCode.PARSE,
     "a code has 6 digits (you typed 7)"),
    ("approve 7kq2xm comment fine mfa code 12345", ErrorCode.PARSE,
     "a code has 6 digits (you typed 5)"),
    ("activate \x00\x07 role", ErrorCode.PARSE, "got control characters"),
    ("review keep", ErrorCode.PARSE, "'review keep' needs a review item id"),
    ("review remove #!", ErrorCode.PARSE, "'#!' is not a review item id"),
    ("whois", ErrorCode.PARSE, "'whois' needs a role"),
    ("cancel", ErrorCode.PARSE, "'cancel' needs a request id"),
    ("approve", ErrorCode.PARSE, "'approve' needs a request id"),
    ("deny", ErrorCode.PARSE, "'deny' needs a request id"),
    ("deny 7kq2xm", ErrorCode.PARSE, "'deny' needs a reason"),
    ("deny 7kq2xm because", ErrorCode.PARSE, "unknown word 'because' after the request id"),
    ("breakglass prod-db", ErrorCode.PARSE, "'breakglass' needs a reason"),
    ("breakglass prod-db for 1h", ErrorCode.PARSE, "'breakglass' needs a reason"),
    ("breakglass", ErrorCode.PARSE, "'breakglass' needs a role"),
    ("mfa", ErrorCode.PARSE, "'mfa' needs one of: enroll, confirm, status, reset"),
    ("mfa reset", ErrorCode.PARSE, "'mfa reset' needs a person"),
    ("review", ErrorCode.PARSE, "'review' needs one of: start"),
    ("review start", ErrorCode.PARSE, "'review start' needs a role"),
    ("review start for 1d", ErrorCode.PARSE, "'review start' needs a role"),
    ("assign", ErrorCode.PARSE, "'assign' needs a person"),
    ("assign bob", ErrorCode.PARSE, "'assign' needs a role"),
    ("assign bob prod-db", ErrorCode.PARSE, "'assign' needs eligible or active after the role"),
    ("assign bob prod-db for 1h", ErrorCode.PARSE, "needs eligible or active after the role"),
    ("assign bob prod-db eligable", ErrorCode.PARSE, "Did you mean 'eligible'?"),
    ("assign bob prod-db permanent", ErrorCode.PARSE, "use eligible or active"),
    (
        "assign bob prod-db active for 1h until 2027-01-01",
        ErrorCode.PARSE,
        "give either 'for' or 'until', not both",
    ),
    ("unassign bob", ErrorCode.PARSE, "'unassign' needs a role"),
    # request ids and quoting
    ("approve prod-db", ErrorCode.PARSE, "'prod-db' is not a request id"),
    ("cancel r0l1", ErrorCode.PARSE, "'r0l1' is not a request id"),
    (
        'activate "prod-db for 1h',
        ErrorCode.PARSE,
        "the quote before 'prod-db for 1h' is not closed",
    ),
    ('"unclosed', ErrorCode.PARSE, "is not closed"),
    ('assign "" prod-db active', ErrorCode.PARSE, "the person is empty"),
    ('activate "" for 1h', ErrorCode.PARSE, "the role name is empty"),
]


@pytest.mark.parametrize(("text", "code", "says"), ERRORS, ids=[text for text, *_ in ERRORS])
def test_errors_are_one_specific_line_with_a_hint_that_parses(
    text: str, code: ErrorCode, says: str
) -> None:
    with pytest.raises(PimError) as caught:
        parse(text)
    error = caught.value
    assert error.code is code
    assert says in error.message
    assert "\n" not in error.message
    assert error.hint
    parse(error.hint)  # the example offered must itself be a valid command


def test_the_hint_is_an_example_of_the_command_that_failed() -> None:
    with pytest.raises(PimError) as caught:
        parse("deny 7kq2xm")
    assert caught.value.hint is not None
    assert isinstance(parse(caught.value.hint), m.Deny)


def test_a_wrong_code_is_not_echoed_back() -> None:
    with pytest.raises(PimError) as caught:
        parse("activate prod-db code 9876543")
    assert "9876543" not in str(caught.value)


def test_long_words_are_shortened_in_messages() -> None:
    with pytest.raises(PimError) as caught:
        parse("activate prod-db " + "x" * 500)
    assert len(caught.value.message) < 120


@pytest.mark.parametrize(
    ("topic", "example"),
    [(topic.verb, example) for topic in TOPICS.values() for example in topic.examples],
)
def test_every_documented_example_parses(topic: str, example: str) -> None:
    command = parse(example)
    assert command.name.split()[0] == topic or isinstance(command, m.Help)


def test_command_names_are_the_verbs() -> None:
    assert parse("activate").name == "activate"
    assert parse("mfa enroll").name == "mfa enroll"
    assert parse("review start prod-db").name == "review start"


def test_help_overview_lists_every_command_with_the_prefix() -> None:
    text = help_text(prefix="/pim")
    for verb in TOPICS:
        assert f"/pim {verb}" in text
    for word in ("mfa confirm CODE", "mfa reset USER", "review start"):
        assert word in text


def test_help_for_one_command_has_examples() -> None:
    text = help_text("activate", prefix="pim")
    assert "pim activate [ROLE]" in text
    assert "pim activate prod-db-admin for 1h reason" in text
    assert help_text("mfa confirm").startswith("pim mfa enroll")


def test_help_for_an_unknown_topic_suggests_one() -> None:
    with pytest.raises(PimError) as caught:
        help_text("actvate")
    assert caught.value.code is ErrorCode.UNKNOWN_COMMAND
    assert "Did you mean 'activate'?" in caught.value.message
    assert caught.value.hint == "help activate"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("actvate", "activate"),
        ("APROVE", "approve"),
        ("whois", "whois"),
        ("prod-dbb", "prod-db"),
        ("zzz", None),
        ("", None),
    ],
)
def test_suggest(word: str, expected: str | None) -> None:
    candidates = [*TOPICS, "prod-db", "staging-db"]
    assert suggest(word, candidates) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U123>", UserRef(UserRefKind.MENTION, "U123")),
        ("<@W42|alice>", UserRef(UserRefKind.MENTION, "W42")),
        ("Alice@Example.COM", UserRef(UserRefKind.EMAIL, "alice@example.com")),
        ("<mailto:a@b.io|a@b.io>", UserRef(UserRefKind.EMAIL, "a@b.io")),
        ("Alice Liddell", UserRef(UserRefKind.NAME, "Alice Liddell")),
        ("<at>Alice  Liddell</at>", UserRef(UserRefKind.NAME, "Alice Liddell")),
        ("alice@localhost", UserRef(UserRefKind.NAME, "alice@localhost")),
    ],
)
def test_user_references(text: str, expected: UserRef) -> None:
    assert parse_user(text) == expected
