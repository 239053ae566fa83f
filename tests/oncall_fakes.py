"""Local fakes of PagerDuty's and Opsgenie's on-call APIs (aiohttp servers on free ports).

Shapes follow the published references: PagerDuty ``GET /oncalls`` (``oncalls`` with
``user`` (``email`` when ``include[]=users``), ``schedule``, ``start``, ``end``; classic
pagination with ``limit``, ``offset`` and ``more``; ``Authorization: Token token=…``; errors
``{"error": {"message", "code"}}``) and Opsgenie ``GET /v2/schedules/{id}/timeline``
(``data.finalTimeline.rotations[].periods[]`` with ``startDate``, ``endDate`` and a
``recipient``; ``Authorization: GenieKey …``). Times are written with offsets, as the real
services do for users in other zones.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stamp(at: datetime) -> str:
    return at.isoformat()


@dataclass
class OnCallShift:
    schedule: str
    email: str
    start: datetime
    end: datetime


@dataclass
class FakeOnCall:
    token: str = "pd-token"
    shifts: list[OnCallShift] = field(default_factory=list)
    page_size: int = 100
    throttle_next: int = 0  # answer this many requests with 429 + Retry-After first
    down: bool = False  # answer 503 to everything
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/oncalls", self._pagerduty)
        app.router.add_get("/v2/schedules/{schedule}/timeline", self._opsgenie)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _refusal(self, request: web.Request, scheme: str) -> web.Response | None:
        self.requests.append({"path": request.path, "query": list(request.query.items()),
                              "auth": request.headers.get("Authorization", "")})
        if self.down:
            return web.json_response({"error": {"message": "unavailable", "code": 2000}},
                                     status=503)
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return web.json_response({"error": {"message": "Rate Limit Exceeded",
                                                "code": 2020}}, status=429,
                                     headers={"Retry-After": "1"})
        expected = f"Token token={self.token}" if scheme == "pd" else f"GenieKey {self.token}"
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": {"message": "Invalid Token", "code": 2006}},
                                     status=401)
        return None

    async def _pagerduty(self, request: web.Request) -> web.Response:
        refused = self._refusal(request, "pd")
        if refused is not None:
            return refused
        schedules = request.query.getall("schedule_ids[]", [])
        since = datetime.fromisoformat(request.query["since"].replace("Z", "+00:00"))
        until = datetime.fromisoformat(request.query["until"].replace("Z", "+00:00"))
        with_users = "users" in request.query.getall("include[]", [])
        matching = [s for s in self.shifts if s.schedule in schedules
                    and s.start < until and s.end > since]
        offset = int(request.query.get("offset", "0"))
        limit = min(int(request.query.get("limit", "25")), self.page_size)
        page = matching[offset:offset + limit]
        oncalls = [{
            "escalation_policy": {"id": "PEP1", "type": "escalation_policy_reference"},
            "escalation_level": 1,
            "schedule": {"id": s.schedule, "type": "schedule_reference"},
            "user": {"id": f"P{abs(hash(s.email)) % 10**6}", "type": "user",
                     "summary": s.email.split("@")[0].title(),
                     **({"email": s.email} if with_users else {})},
            "start": _stamp(s.start), "end": _stamp(s.end)} for s in page]
        return web.json_response({"oncalls": oncalls, "limit": limit, "offset": offset,
                                  "more": offset + limit < len(matching), "total": None})

    async def _opsgenie(self, request: web.Request) -> web.Response:
        refused = self._refusal(request, "og")
        if refused is not None:
            return refused
        schedule = request.match_info["schedule"]
        periods = [{"startDate": _stamp(s.start), "endDate": _stamp(s.end), "type": "default",
                    "recipient": {"id": "u-" + s.email, "type": "user", "name": s.email}}
                   for s in self.shifts if s.schedule == schedule]
        return web.json_response({"data": {
            "_parent": {"id": schedule, "name": "sre", "enabled": True},
            "startDate": "2026-11-01T00:00:00Z", "endDate": "2026-11-03T00:00:00Z",
            "finalTimeline": {"rotations": [
                {"id": "r1", "name": "primary", "order": 1, "periods": periods}]}},
            "took": 0.01, "requestId": "req-1"})
