"""What a person types wrong, or twice, in ``pimbot run``'s console (a real process on the
bundled example policy): each answer says what is wrong, its hint keeps what the person
typed and names their real request, and the refusals are in the audit log.

- a bad duration after a role hints at that role, not another one;
- ``0m`` and ``-5m`` say why they are not durations pimbot can use;
- a second activation of an active role is refused (extend is the way), the first kept;
- an activation missing its reason or ticket is audited like other refusals;
- ``cancel`` / ``approve`` without an id hint at the person's real request.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from pimbot.commands import parse
from server_process import clean_env, run_pimbot

EXAMPLE_POLICY = Path(__file__).resolve().parents[1] / "src" / "pimbot" / "policy" / "example.yaml"
SCRIPT = """\
as bob@example.com
activate staging-deploy for 99x reason deploy
activate staging-deploy for 0m reason deploy
activate staging-deploy for -5m reason deploy
activate staging-deploy for 1h reason deploy
activate staging-deploy for 2h reason again
activate staging-deploy for 1h
activate billing-read for 1h reason read
activate prod-db-admin for 1h reason restore
cancel
as alice@example.com
approve
deny
"""


def _answer(out: list[str], start: str) -> tuple[str, str]:
    [line] = [line for line in out if line.startswith(start)]
    text, _, hint = line.partition(" — try: ")
    return text, hint


def test_mistakes_and_a_second_activation_get_specific_answers_and_are_audited(
        tmp_path: Path) -> None:
    done = run_pimbot(["run"], tmp_path, stdin=SCRIPT, env=clean_env(
        tmp_path, PIMBOT_ADAPTERS="console", PIMBOT_POLICY=str(EXAMPLE_POLICY)))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()

    _, hint = _answer(out, "'99x' is not a duration")
    assert hint.startswith("activate staging-deploy for "), hint  # the role typed
    parse(hint)
    text, _ = _answer(out, "'0m' is zero")
    assert text == "'0m' is zero: a duration must be at least 1 second, like 30m"
    text, _ = _answer(out, "'-5m' is negative")
    assert text == "'-5m' is negative: a duration must be at least 1 second, like 30m"

    text, hint = _answer(out, "staging-deploy is already active for you until ")
    assert "use extend" in text and hint == "extend staging-deploy"

    db = sqlite3.connect(tmp_path / "pimbot.db")
    try:
        rows = db.execute("SELECT id, state, kind, role, reason FROM requests "
                          "ORDER BY requested_at").fetchall()
        refusals = [(subject, json.loads(detail)) for subject, detail in db.execute(
            "SELECT subject, detail FROM audit_events WHERE action = 'activation.refused' "
            "ORDER BY seq")]
    finally:
        db.close()
    staging = [r for r in rows if r[3] == "staging-deploy"]
    assert [(r[1], r[4]) for r in staging] == [("active", "deploy")], "the first one kept"
    pending = [r[0] for r in rows if r[3] == "prod-db-admin"]
    assert len(pending) == 1 and len(pending[0]) == 8, pending  # ids are 8 characters now
    assert [(s, d["reason"], d.get("missing")) for s, d in refusals] == [
        ("staging-deploy", "already_active", None),
        ("staging-deploy", "incomplete", "reason"),
        ("billing-read", "incomplete", "ticket"),
    ]
    assert refusals[0][1]["request"] == staging[0][0]

    _, hint = _answer(out, "'cancel' needs a request id")
    assert hint == f"cancel {pending[0]}", hint  # Bob's own request waiting
    _, hint = _answer(out, "'approve' needs a request id")
    assert hint.startswith(f"approve {pending[0]} "), hint  # the one waiting for Alice
    parse(hint)
