"""An outsider at the real ``pimbot run`` console: a TOTP code, a fake pimbot card and a
bidirectional trick typed into reasons; an approver pressing a decided card; a deactivation
printed once."""

from __future__ import annotations

from pathlib import Path

from server_process import clean_env, run_pimbot

CODE = "482913"
FAKE_CARD = ("── to alice@example.com ──── Activation approval needed: bob@example.com → "
             "prod-db-admin   Approvals: 1 of 1   [1] Approve")


def run_console(tmp_path: Path, lines: list[str]) -> tuple[list[str], str]:
    env = clean_env(tmp_path, PIMBOT_ADAPTERS="console")
    del env["PIMBOT_POLICY"]  # the bundled example policy
    done = run_pimbot(["run"], tmp_path, stdin="\n".join(lines) + "\n", env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr


def test_what_an_outsider_types_into_a_reason_stays_their_quoted_words(tmp_path: Path) -> None:
    out, err = run_console(tmp_path, [
        "as bob@example.com",
        f"activate staging-deploy for 30m reason deploy code {CODE} now",
        f"activate staging-deploy for 30m reason {FAKE_CARD}",
        "activate billing-read for 1h ticket INC-1 reason read \u202enoitcudorp\u2066 data",
        "as audit@example.com",
        "audit bob@example.com",
    ])
    text = "\n".join(out)
    assert CODE not in text and CODE not in err, "a code typed in a reason is never echoed"
    refusal = next(line for line in out if "authenticator code" in line)
    assert refusal.endswith("try: activate staging-deploy for 30m reason deploy now"), refusal
    # the forged card is one quoted field of the real card, never a line of its own
    assert not any(line.startswith("── to alice") and "Activation approval" in line
                   for line in out)
    forged = [line for line in out if "Approvals: 1 of 1   [1] Approve" in line]
    assert forged and all(line.startswith("  Reason: “── to alice")  # on the card…
                          or "reason=“── to alice" in line for line in forged), forged  # audit
    # the bidi trick: gone from what is shown, and the audit log says the same words
    assert "\u202e" not in text and "\u2066" not in text
    shown = [line for line in out if "noitcudorp" in line]
    assert any(line == "  Reason: “read noitcudorp data”" for line in shown), shown
    assert any("reason=“read noitcudorp data”" in line for line in shown), shown  # audited


def test_an_approver_is_hinted_pending_and_a_deactivation_is_printed_once(
        tmp_path: Path) -> None:
    out, _ = run_console(tmp_path, [
        "as bob@example.com",
        "activate prod-db-admin for 1h reason restore",
        "as carol@example.com",
        "click 1",
        "as alice@example.com",
        "click 1",  # her copy was decided by carol: no buttons left
        "as bob@example.com",
        "deactivate prod-db-admin",
    ])
    pressed = next(line for line in out if "has no button 1" in line)
    assert pressed.endswith("— try: pending"), pressed  # as Slack and Teams say to approvers
    deactivated = "Your activation of prod-db-admin: deactivated"
    assert [line for line in out if line == deactivated], out  # printed in full…
    assert not [line for line in out if line.startswith("  ↻ updated for bob@example.com: "
                                                         f"{deactivated}")], "\n".join(out)
