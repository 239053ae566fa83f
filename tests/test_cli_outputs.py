"""Where ``pimbot`` writes, through the real process: a file it cannot create is named with
what is wrong, and a standard output that closes under it (``| head -2``) ends it quietly,
as Unix tools end, with the shell's SIGPIPE status 141."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pimbot.secretbox import generate_key
from server_process import clean_env, pimbot_command, run_pimbot

EXIT_PIPE = 141  # 128 + SIGPIPE: what `yes | head -1` reports in a shell


@pytest.mark.parametrize("args", [
    ["db", "backup", "/nonexistent/dir/x.db"],
    ["audit", "export", "--output", "/nonexistent/dir/x.db"],
    ["review", "export", "rev12345", "--output", "/nonexistent/dir/x.db"],
    ["manifest", "teams", "--app-id", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
     "--out", "/nonexistent/dir/x.db"],
])  # fmt: skip
def test_a_file_that_cannot_be_written_is_named_with_what_is_wrong(
        tmp_path: Path, args: list[str]) -> None:
    assert run_pimbot(["db", "upgrade"], tmp_path).returncode == 0
    done = run_pimbot(args, tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "pimbot: cannot write /nonexistent/dir/x.db: the directory /nonexistent/dir does not "
        "exist"]


def test_an_unwritable_export_fails_before_it_creates_a_database(tmp_path: Path) -> None:
    done = run_pimbot(["audit", "export", "--output", "/nonexistent/dir/audit.csv"], tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (1, [
        "pimbot: cannot write /nonexistent/dir/audit.csv: the directory /nonexistent/dir does "
        "not exist"])
    assert not (tmp_path / "pimbot.db").exists()


def test_an_export_into_a_directory_says_it_is_one(tmp_path: Path) -> None:
    done = run_pimbot(["audit", "export", "--output", str(tmp_path)], tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (1, [
        f"pimbot: cannot write {tmp_path}: it is a directory"])


def test_a_closed_stdout_ends_the_console_quietly_and_runs_no_further_line(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path, PIMBOT_AUDIT_CHECKPOINT=str(tmp_path / "checkpoints.jsonl"),
                    PIMBOT_SECRET_KEY=generate_key())
    process = subprocess.Popen(
        [*pimbot_command(), "run"], cwd=tmp_path, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write("as bob@example.com\n")
        process.stdin.flush()
        assert process.stdout.readline() == "now acting as bob@example.com\n"
        process.stdout.close()  # the reader goes away (`| head -1`)
        process.stdin.write("status\n")  # its answer meets the closed pipe
        process.stdin.write("activate prod-db-admin for 1h reason never read\n")
        process.stdin.close()
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read() if process.stderr is not None else ""
    assert code == EXIT_PIPE, stderr
    assert stderr == ""
    audit = run_pimbot(["audit", "export"], tmp_path)
    assert "request.created" not in audit.stdout and "never read" not in audit.stdout


@pytest.mark.parametrize("args", [["audit", "export"], ["policy", "plan"], ["keygen"]])
def test_a_closed_stdout_ends_a_command_quietly(tmp_path: Path, args: list[str]) -> None:
    assert run_pimbot(["policy", "apply"], tmp_path).returncode == 0  # audit events to export
    env = clean_env(tmp_path)
    env.pop("PYTHONUNBUFFERED", None)  # stdout block-buffered, as a user's shell has it
    reader, writer = os.pipe()
    os.close(reader)  # nobody will ever read its output: its first write meets a closed pipe
    try:
        done = subprocess.run([*pimbot_command(), *args], cwd=tmp_path,
                              env=env, stdout=writer, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (EXIT_PIPE, "")
