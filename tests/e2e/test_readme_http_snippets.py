"""The README's "Try the HTTP server locally" snippets run as written, pasted into bash.

Each ``sh`` block of that section runs as one bash script (as pasted into a shell) in an
empty directory beside this checkout's ``.venv`` and ``tools`` (as a newcomer's clone has
them), with only the port changed to a free one, and what the README's comments promise
must show in the output: the port answering, ``/readyz`` going from 503 to 200, Prometheus
text, a signed Slack command answered 503 with ``Retry-After: 10`` while pimbot cannot reach
Slack, a forged one 401. The scripts end with ``kill $!`` themselves; whatever is left is
stopped here.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Try the HTTP server locally"
SCRIPT_S = 90


def snippets(readme: str) -> list[str]:
    """The ``sh`` blocks between the section's heading and the next ``## `` heading."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end != -1 else None]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 2, "the section shows the server and a signed Slack command"
    return blocks


def run_snippet(block: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run ``block`` with its port moved to a free one (``tools/slack_command.py`` told the
    same port); its output goes to a file, so a pimbot left running cannot hold it open."""
    for name in (".venv", "tools"):
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    port = free_port()
    script = block.replace("3000", str(port)).replace(
        "tools/slack_command.py", f"tools/slack_command.py --url http://127.0.0.1:{port}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIMBOT_", "SLACK_", "MICROSOFT_"))}
    log = folder / "out.txt"
    with log.open("w") as out:
        process = subprocess.Popen(["bash", "-c", script], cwd=folder, env=env,
                                   text=True, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=SCRIPT_S)
        except subprocess.TimeoutExpired:
            code = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # a pimbot the script did not stop
    text = log.read_text(encoding="utf-8")
    if code == -1:
        pytest.fail(f"the snippet did not finish in {SCRIPT_S} s:\n{text}")
    return subprocess.CompletedProcess(process.args, code, text, "")


@pytest.mark.skipif(sys.platform == "win32", reason="bash snippets")
def test_the_http_snippet_shows_health_readiness_and_metrics(tmp_path: Path) -> None:
    done = run_snippet(snippets(README.read_text(encoding="utf-8"))[0], tmp_path)
    assert done.returncode == 0, done.stdout
    statuses = re.findall(r"^HTTP/1\.1 (\d{3})", done.stdout, re.MULTILINE)
    assert statuses[0] == "200", done.stdout  # /healthz
    assert statuses[1] in {"200", "503"}, done.stdout  # /readyz, right after the port opened
    assert "ready" in done.stdout.split("HTTP/1.1")[-1], "the wait ends on /readyz's 200"
    assert "# TYPE pimbot_" in done.stdout, "Prometheus text from /metrics"


@pytest.mark.skipif(sys.platform == "win32", reason="bash snippets")
def test_the_slack_snippet_is_answered_503_then_401(tmp_path: Path) -> None:
    block = snippets(README.read_text(encoding="utf-8"))[1]
    promised = re.findall(r"# (HTTP \d{3}.*)$", block, re.MULTILINE)
    assert promised == ["HTTP 503 (Retry-After: 10)", "HTTP 401"], "the README's comments"
    done = run_snippet(block, tmp_path)
    answers = re.findall(r"^HTTP \d{3}.*$", done.stdout, re.MULTILINE)
    assert answers == promised, done.stdout
