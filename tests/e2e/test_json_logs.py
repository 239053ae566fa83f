"""``PIMBOT_LOG_FORMAT=json``: every line pimbot logs is one JSON object, and a line about a
job carries the job (``request_id``) and the activation it is about; a turn carries its user."""

from __future__ import annotations

import io
import json
import logging
import secrets
from pathlib import Path

from console_process import run_console
from hook_policy import hook_policy_env
from webhook_receiver import WebhookReceiver

from pimbot.logcontext import bound
from pimbot_server import logs

BOB = "bob@example.com"


def test_a_json_line_carries_the_bound_fields_and_the_traceback() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    logs.configure(logging.INFO, "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    log = logging.getLogger("pimbot.test")
    try:
        with bound(request_id="h-1", user=BOB), bound(activation_id="r42"):
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("job %s failed", 7)
        log.warning("outside")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:  # pytest's own capture handlers, as they were
            root.addHandler(handler)
        root.setLevel(level)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "job 7 failed" and first["level"] == "ERROR"
    assert (first["request_id"], first["activation_id"], first["user"]) == ("h-1", "r42", BOB)
    assert "ValueError: boom" in first["exception"]
    assert second["message"] == "outside" and "request_id" not in second


async def test_pimbot_run_logs_one_json_object_a_line(tmp_path: Path) -> None:
    nowhere = WebhookReceiver(secrets.token_urlsafe(24))  # never started: the grant fails
    env = hook_policy_env(tmp_path, nowhere)
    env["PIMBOT_LOG_FORMAT"] = "json"
    script = f"as {BOB}\nactivate staging-deploy for 1h reason logs\n"
    run = await run_console(tmp_path, script, env)
    assert run.code == 0, run.err
    [request] = run.request_ids()
    lines = [json.loads(line) for line in run.err.splitlines() if line.strip()]
    assert lines, "the failing grant is logged"
    failed = [e for e in lines if "failed on attempt" in e["message"]]
    assert failed, lines
    assert failed[0]["activation_id"] == request
    assert failed[0]["request_id"].startswith("job-")
