"""Test helpers for the provider tests: a fake webhook receiver, a command script, targets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from pimbot.ports import GrantTarget

WEBHOOK_SECRET = "s3cret-shared-with-the-receiver"
STARTS = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def make_target(email: str = "bob@example.com", grant: dict[str, Any] | None = None) -> GrantTarget:
    return GrantTarget(
        activation_id="act_" + secrets.token_hex(4),
        email=email,
        role="prod-db-admin",
        grant=grant if grant is not None else {"role": "app_admin"},
        starts_at=STARTS,
        expires_at=STARTS + timedelta(hours=1),
    )


@dataclass
class ReceivedRequest:
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]


@dataclass
class FakeReceiver:
    """A user's system behind the webhook: checks signatures, records requests, keeps state."""

    secret: bytes
    url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    held: set[tuple[str, str]] = field(default_factory=set)
    status: int | None = None  # forced answer status
    check_answer: bytes | None = None  # forced answer body for check
    hang: asyncio.Event | None = None  # when set, requests wait on it (timeouts)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Pimbot-Signature", ""), expected):
            return web.json_response({"error": "bad signature"}, status=401)
        body = json.loads(raw)
        self.requests.append(ReceivedRequest(dict(request.headers), raw, body))
        if self.hang is not None:
            await self.hang.wait()
        if self.status is not None:
            return web.Response(status=self.status)
        key = (body["user"], body["role"])
        if body["action"] == "grant":
            self.held.add(key)
        elif body["action"] == "revoke":
            self.held.discard(key)
        elif self.check_answer is not None:
            return web.Response(body=self.check_answer, content_type="application/json")
        else:
            return web.json_response({"active": key in self.held})
        return web.Response(status=204 if body["action"] == "revoke" else 200)


@asynccontextmanager
async def fake_receiver() -> AsyncIterator[FakeReceiver]:
    receiver = FakeReceiver(WEBHOOK_SECRET.encode())
    app = web.Application()
    app.router.add_post("/pim", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/pim"
    try:
        yield receiver
    finally:
        if receiver.hang is not None:
            receiver.hang.set()
        await runner.cleanup()


COMMAND_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    state_path, log_path = sys.argv[1], sys.argv[2]
    state = json.load(open(state_path)) if os.path.exists(state_path) else []
    with open(log_path, "a") as log:
        log.write(json.dumps({"argv": sys.argv[3:], "env": dict(os.environ)}) + "\\n")
    key = os.environ["PIMBOT_USER"] + "|" + os.environ["PIMBOT_ROLE"]
    action = os.environ["PIMBOT_ACTION"]
    if action == "grant":
        state = sorted(set(state) | {key})
        print("ref-" + os.environ["PIMBOT_ACTIVATION_ID"])
    elif action == "revoke":
        state = [k for k in state if k != key]
    else:
        sys.exit(0 if key in state else 1)
    json.dump(state, open(state_path, "w"))
    """
)


def command_argv(tmp_path: Path, *extra: str) -> list[str]:
    """``python script STATE LOG EXTRA…``: a command that keeps grants in a JSON file."""
    script = tmp_path / "pim_command.py"
    script.write_text(COMMAND_SCRIPT)
    return [
        sys.executable,
        str(script),
        str(tmp_path / "state.json"),
        str(tmp_path / "log"),
        *extra,
    ]


def command_log(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
