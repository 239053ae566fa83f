"""A blank or cut-short policy file never removes every role, through the real process:
an empty file is refused by validate, plan, apply and run alike; a policy without roles is
warned of by validate and plan, applied only by ``policy apply``, never by a start; and a
start on the bundled example policy says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from server_process import clean_env, run_pimbot


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    """``tmp_path`` whose database holds the test policy (1 role, 1 group, 1 assignment)."""
    assert run_pimbot(["policy", "apply"], tmp_path).returncode == 0
    return tmp_path


def _unchanged(folder: Path) -> bool:
    done = run_pimbot(["policy", "plan"], folder)
    return done.returncode == 0 and done.stdout.strip() == "No changes."


@pytest.mark.parametrize("text", ["", "\n  \n", "# pimbot policy\n# (cut here)\n"])
def test_an_empty_policy_file_is_refused_everywhere(applied: Path, text: str) -> None:
    empty = applied / "empty.yaml"
    empty.write_text(text, encoding="utf-8")
    said = (f"pimbot: {empty} is empty (no YAML document): refused, so that a truncated or "
            "wrong file cannot remove every role and assignment (try: write {} in it to mean "
            "no roles on purpose)")
    for args in (["policy", "validate", str(empty)], ["policy", "plan", str(empty)],
                 ["policy", "apply", str(empty)]):
        done = run_pimbot(args, applied)
        assert (done.returncode, done.stdout, done.stderr.splitlines()) == (1, "", [said]), args
    env = clean_env(applied, PIMBOT_POLICY=str(empty))
    started = run_pimbot(["run"], applied, env=env, stdin="roles\n")
    assert started.returncode == 1
    assert started.stderr.splitlines()[-1] == said
    assert _unchanged(applied)


def test_a_policy_without_roles_is_warned_of_and_only_applied_by_name(applied: Path) -> None:
    nothing = applied / "nothing.yaml"
    nothing.write_text("{}\n", encoding="utf-8")
    validated = run_pimbot(["policy", "validate", str(nothing)], applied)
    assert validated.returncode == 0
    assert validated.stdout == "policy OK: 0 roles, 0 assignments\n"
    assert validated.stderr.splitlines() == [
        f"warning: {nothing} defines no roles and no assignments: applying it removes every "
        "role, group and assignment the database holds and ends every live grant"]
    planned = run_pimbot(["policy", "plan", str(nothing)], applied)
    assert planned.returncode == 0
    assert "0 to add, 0 to change, 3 to remove." in planned.stdout
    assert planned.stderr.splitlines() == [
        f"warning: {nothing} defines no roles: applying it would remove 1 role, 1 group and "
        "1 assignment"]

    env = clean_env(applied, PIMBOT_POLICY=str(nothing))
    started = run_pimbot(["run"], applied, env=env, stdin="roles\n")
    assert started.returncode == 1
    assert started.stderr.splitlines()[-1] == (
        f"pimbot: not started: {nothing} defines no roles, and applying it would remove 1 "
        f"role, 1 group and 1 assignment (try: pimbot policy plan {nothing} to see them; "
        f"pimbot policy apply {nothing} removes them on purpose)")
    assert _unchanged(applied), "the refused start removed nothing"

    removed = run_pimbot(["policy", "apply", str(nothing)], applied)
    assert removed.returncode == 0
    assert "removed 1 role, 1 group and 1 assignment" in removed.stderr
    again = run_pimbot(["run"], applied, env=env, stdin="roles\n")
    assert again.returncode == 0, again.stderr  # nothing left to remove: it starts


def test_a_start_on_the_bundled_example_says_so_in_one_warning(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    del env["PIMBOT_POLICY"]
    done = run_pimbot(["run"], tmp_path, env=env, stdin="roles\n")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "policy" in line]
    assert len(said) == 1 and "WARNING" in said[0], done.stderr
    assert "example.yaml, the bundled example (PIMBOT_POLICY is not set and there is no " \
           "./pimbot.yaml; copy it there to make it yours)" in said[0]
    (tmp_path / "pimbot.yaml").write_text((tmp_path / "policy.yaml").read_text())
    own = run_pimbot(["run"], tmp_path, env=env, stdin="roles\n")
    assert own.returncode == 0, own.stderr
    assert "bundled example" not in own.stderr


def test_a_start_without_its_policy_file_never_puts_the_example_over_a_real_policy(
        applied: Path) -> None:
    """The database holds the test policy; started with no PIMBOT_POLICY and no
    ./pimbot.yaml, pimbot would fall back to the bundled example and rewrite its role and
    group with the example's (a first run on an empty database still takes the example)."""
    env = clean_env(applied)
    del env["PIMBOT_POLICY"]
    started = run_pimbot(["run"], applied, env=env, stdin="roles\n")
    assert started.returncode == 1, started.stderr
    last = started.stderr.splitlines()[-1]
    assert last.startswith("pimbot: not started: no policy file (PIMBOT_POLICY is not set and "
                           f"there is no ./pimbot.yaml in {applied})"), last
    assert "would change 1 role and 1 group of the policy this database holds" in last, last
    assert "set PIMBOT_POLICY" in last and "Traceback" not in started.stderr
    assert _unchanged(applied), "the refused start changed nothing"
    (applied / "pimbot.yaml").write_text((applied / "policy.yaml").read_text())
    own = run_pimbot(["run"], applied, env=env, stdin="roles\n")
    assert own.returncode == 0, own.stderr  # with its file found, it starts as before
