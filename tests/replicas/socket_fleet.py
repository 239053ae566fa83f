"""Slack's Socket Mode side for several replicas: each replica holds its own WebSocket, and
each envelope goes to exactly one connection (as Slack does with several connections of an
app). An envelope a connection never acked is delivered again to another connection once
that one closes (Slack re-delivers un-acked envelopes).

Replicas are told apart by their app-level token (``xapp-…``): ``apps.connections.open``
answers each with a WebSocket URL naming it, so a test can send to "replica 1's socket".
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from fake_slack import ApiCall, FakeSlack, fixture


@dataclass(eq=False)
class Connection:
    name: str  # the app token it was opened with
    ws: web.WebSocketResponse
    received: list[str] = field(default_factory=list)  # envelope ids sent to it
    acked: list[str] = field(default_factory=list)


class SocketFleet(FakeSlack):
    def __init__(self, users: dict[str, tuple[str, str]]) -> None:
        super().__init__(users)
        self.connections: list[Connection] = []
        self.closed: list[Connection] = []
        self._pending: dict[str, tuple[dict[str, Any], Connection]] = {}

    def live(self, name: str) -> Connection | None:
        return next((c for c in self.connections if c.name == name and not c.ws.closed), None)

    def acks_of(self, envelope_id: str) -> list[str]:
        """Which connections acked this envelope (Slack needs exactly one)."""
        return [c.name for c in self.connections + self.closed if envelope_id in c.acked]

    async def deliver(self, envelope: dict[str, Any], to: str) -> None:
        connection = self.live(to)
        assert connection is not None, f"no live Socket Mode connection {to}"
        self._pending[envelope["envelope_id"]] = (envelope, connection)
        connection.received.append(envelope["envelope_id"])
        await connection.ws.send_json(envelope)

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] != "apps.connections.open":
            return await super()._api(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(ApiCall("apps.connections.open", {}))
        return web.json_response({"ok": True,
                                  "url": f"ws://127.0.0.1:{self.port}/socket?app={token}"})

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(request.query.get("app", ""), ws)
        self.connections.append(connection)
        await ws.send_json(fixture("socket_mode_envelope.json")[0])  # hello
        try:
            async for message in ws:
                if message.type.name != "TEXT":
                    continue
                frame = json.loads(message.data)
                self.socket_frames.append(frame)
                envelope_id = str(frame.get("envelope_id") or "")
                if envelope_id:
                    connection.acked.append(envelope_id)
                    self._pending.pop(envelope_id, None)
        finally:
            self.connections.remove(connection)
            self.closed.append(connection)
            await self._redeliver(connection)
        return ws

    async def _redeliver(self, gone: Connection) -> None:
        """What ``gone`` never acked goes to another live connection."""
        for envelope, via in list(self._pending.values()):
            if via is not gone:
                continue
            others = [c for c in self.connections if not c.ws.closed]
            if not others:
                return
            await asyncio.shield(self.deliver(envelope, others[0].name))
