"""The console adapter: ``pimbot run`` with a script piped to stdin, and its card drawing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pimbot.ui.cards import (
    ActionId,
    Button,
    Card,
    Choice,
    Field,
    Form,
    Input,
    InputKind,
    Mention,
    Time,
)
from pimbot_console.render import render_card, render_form
from server_process import clean_env, run_pimbot


def console(tmp_path: Path, script: str) -> tuple[int, list[str], str]:
    done = run_pimbot(["run"], tmp_path, stdin=script, env=clean_env(tmp_path,
                      PIMBOT_ADAPTERS="console"))  # fmt: skip
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_a_piped_script_runs_answers_mistakes_in_one_line_and_exits_0(tmp_path: Path) -> None:
    script = "help\nclick 1\nas bob@example.com\nfrobnicate\nwait soon\nwait 99999d\nas nobody\n"
    code, out, err = console(tmp_path, script)
    assert code == 0, err
    assert any("as EMAIL" in line and "click N" in line for line in out)  # console help
    assert any("activate" in line for line in out)  # the grammar's help follows
    assert "now acting as bob@example.com" in out
    for mistake in (
        "no card has been shown to sec-lead@example.com yet",  # the first admin, by default
        "'frobnicate' is not a command",
        "'soon' is not a duration",
        "'wait' waits in real time, at most 1h; 99999d is longer",  # and does not hang
        "'as' needs one email address",
    ):
        answers = [line for line in out if mistake in line]
        assert len(answers) == 1, (mistake, out)
        assert "try:" in answers[0]
    soon = next(line for line in out if "'soon' is not a duration" in line)
    assert soon.count("1h30m") == 1 and "try: wait 5s" in soon, soon  # the forms said once
    assert not any(line.startswith("bob@example.com>") for line in out)  # no prompt on a pipe
    assert not any(" INFO " in line or " WARNING " in line for line in out)  # logs on stderr


def test_a_bare_activate_shows_no_duration_the_person_did_not_give(tmp_path: Path) -> None:
    code, out, err = console(tmp_path, "as bob@example.com\nactivate\n")
    assert code == 0, err
    assert any("Duration" in line for line in out), out  # the form asks for one…
    assert not any(line.strip() == "given:" for line in out), out  # …none is shown as given


def test_an_approval_goes_from_request_to_approver_card_to_decision(tmp_path: Path) -> None:
    script = "\n".join([
        "as bob@example.com",
        "pim activate prod-db-admin for 1h reason restore backup",
        "click 7",
        "as alice@example.com",
        "click 1",
        "as bob@example.com",
        "click 3",
    ]) + "\n"  # fmt: skip
    code, out, err = console(tmp_path, script)
    assert code == 0, err
    text = "\n".join(out)
    assert "── to alice@example.com" in text
    assert "[1] Approve" in text
    assert "[2] Deny" in text
    assert "↻ updated for alice@example.com" in text  # her copy is redrawn once decided
    # a button the card does not have: which buttons it has, and a command that works
    assert ("the latest card shown to you (Your activation of prod-db-admin: waiting for "
            "approval) has no button 7; its only button is [1] Cancel request — try: status"
            ) in out, text
    assert ("the latest card shown to you (Your activation of prod-db-admin: active) has no "
            "button 3; its buttons are [1] Extend and [2] Deactivate — try: click 1") in out, text


def test_a_card_shows_its_audience_fields_and_numbered_buttons() -> None:
    card = Card(
        title="Approval needed: bob@example.com → prod-db-admin",
        fields=(Field("Duration", "1h"), Field("Reason", "restore backup"),
                Field("Approvals", "0 of 1")),
        actions=(Button("Approve", ActionId.APPROVE, "r1"), Button("Deny", ActionId.DENY, "r1")),
    )  # fmt: skip
    lines = render_card(card, "alice@example.com").splitlines()
    assert lines[0].startswith("── to alice@example.com ───")
    assert lines[1] == "Approval needed: bob@example.com → prod-db-admin"
    assert lines[2] == "  Duration: 1h   Reason: restore backup   Approvals: 0 of 1"
    assert lines[3] == "  [1] Approve   [2] Deny"


def test_people_and_times_are_written_out_and_updates_are_marked() -> None:
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    card = Card(title="Active", fields=(Field("Holder", Mention("bob@example.com", "Bob")),
                                        Field("Until", Time(at))))  # fmt: skip
    text = render_card(card, "channel #sec-alerts", updated=True)
    assert text.startswith("── updated, to channel #sec-alerts")
    assert "Holder: Bob <bob@example.com>   Until: 2026-11-02 09:30 UTC" in text
    assert "[1]" not in text


def test_a_form_says_what_is_missing_and_the_choices() -> None:
    form = Form(
        title="Activate a role",
        submit=ActionId.SUBMIT_ACTIVATION,
        inputs=(
            Input("role", "Role", InputKind.SELECT, choices=(Choice("prod", "prod-db-admin"),
                                                              Choice("stg", "staging-deploy"))),
            Input("duration", "Duration", initial="1h"),
            Input("code", "MFA code", InputKind.CODE),
        ),
    )  # fmt: skip
    text = render_form(form)
    assert "the console has no forms" in text
    assert "duration: 1h" in text
    assert "role: Role — one of prod-db-admin, staging-deploy" in text
    assert "code: MFA code — a 6-digit code" in text


def test_a_reason_cannot_imitate_the_card_or_drive_the_terminal(tmp_path: Path) -> None:
    forged = "x   Approvals: 1 of 1 \x1b[2J\x1b[31m https://evil.example/approve"
    script = "\n".join([
        "as bob@example.com",
        f"activate prod-db-admin for 1h reason {forged}",
    ]) + "\n"  # fmt: skip
    code, out, err = console(tmp_path, script)
    assert code == 0, err
    text = "\n".join(out)
    assert "\x1b" not in text, "terminal escapes are shown inert, never sent to the terminal"
    assert "https://evil" not in text
    reasons = [line for line in out if line.lstrip().startswith("Reason:")]
    assert reasons, out
    for line in reasons:
        assert line.endswith("https[:]//evil[.]example/approve”"), line
        assert "Reason: “x   Approvals: 1 of 1 �[2J�[31m" in line, line


def test_help_answers_the_console_words_and_quit_takes_nothing_after_it(
        tmp_path: Path) -> None:
    script = "help as\nhelp click\nhelp wait\nhelp quit\nhelp exit\nquit now\nhelp\n"
    code, out, err = console(tmp_path, script)
    assert code == 0, err
    assert not any("is not a command" in line for line in out), out
    for syntax in ("as EMAIL", "click N", "wait DUR"):
        assert syntax in out, (syntax, out)  # each word's help starts with its syntax line
    assert out.count("quit") == 2  # help quit, help exit
    assert any(line.startswith("  click 1") for line in out)  # examples, unprefixed
    refused = [line for line in out if "'quit' takes nothing after it" in line]
    assert len(refused) == 1 and refused[0].endswith("try: quit"), out
    assert any(line.startswith("Commands (times are UTC") for line in out)  # not quit yet
