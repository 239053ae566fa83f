"""A user's own system at the other end of the webhook provider: a local aiohttp server.

It checks what DESIGN.md promises on the wire (``X-Pimbot-Signature`` = HMAC-SHA256 of the raw
body under the shared secret, ``Idempotency-Key: ACTIVATION_ID:ACTION``) and records every
delivery, so tests can assert on what the receiving system really got, and when.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

PATH = "/pim"


@dataclass(frozen=True)
class Delivery:
    body: dict[str, Any]
    signature_ok: bool
    idempotency_key: str
    arrived: float  # time.monotonic() when the request arrived

    @property
    def action(self) -> str:
        return str(self.body["action"])

    @property
    def activation_id(self) -> str:
        return str(self.body["activation_id"])

    @property
    def idempotency_ok(self) -> bool:
        return self.idempotency_key == f"{self.activation_id}:{self.action}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WebhookReceiver:
    """Answers 2xx to correctly signed calls (401 otherwise) and keeps each one."""

    def __init__(self, secret: str, latency: float = 0.0) -> None:
        self.secret = secret.encode()
        self.latency = latency  # seconds each call takes, as a real system's API would
        self.deliveries: list[Delivery] = []
        self.port = free_port()
        self._granted: set[tuple[str, str]] = set()
        # A per-activation credential system: a grant mints one credential for its
        # activation id; only a revoke of that activation id takes it away.
        self.credentials: dict[str, tuple[str, str]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def of(self, action: str, activation_id: str | None = None) -> list[Delivery]:
        return [
            d
            for d in self.deliveries
            if d.action == action and activation_id in (None, d.activation_id)
        ]

    @property
    def members(self) -> set[tuple[str, str]]:
        """A membership system's view: (user, role) from a grant until a revoke."""
        return set(self._granted)

    def changes(self) -> list[tuple[str, str, str, str]]:
        """(action, user, role, activation_id) of every grant and revoke, in arrival order."""
        return [
            (d.action, d.body["user"], d.body["role"], d.activation_id)
            for d in self.deliveries
            if d.action in ("grant", "revoke")
        ]

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.latency:
            await asyncio.sleep(self.latency)
        expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        signature = request.headers.get("X-Pimbot-Signature", "")
        delivery = Delivery(
            body=json.loads(raw),
            signature_ok=hmac.compare_digest(signature, expected),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            arrived=time.monotonic(),
        )
        self.deliveries.append(delivery)
        if not delivery.signature_ok:
            return web.json_response({"error": "bad signature"}, status=401)
        key = (str(delivery.body["user"]), str(delivery.body["role"]))
        if delivery.action == "grant":
            self._granted.add(key)
            self.credentials[delivery.activation_id] = key
        elif delivery.action == "revoke":
            self._granted.discard(key)
            self.credentials.pop(delivery.activation_id, None)
        return web.json_response({"active": key in self._granted})
