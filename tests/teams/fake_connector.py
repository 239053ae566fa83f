"""A fake Bot Framework on a free local port: the Bot Connector (``serviceUrl``), the Entra
token endpoint, and the OpenID metadata + JWKS the connector's tokens are checked against.

It records every call (with its ``Authorization`` header), answers member lookups from a
small directory, creates conversations (1:1 and channel posts), keeps every activity as last
sent or updated, and injects faults per route: an HTTP status with headers (a 429 with
``Retry-After``, a 403 after uninstall). The signing key is a local RSA key; ``mint`` signs
tokens with it as the Bot Connector would.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import unused_port
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"
APP_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
TENANT = "9f8e7d6c-5b4a-4321-9abc-def012345678"
KID = "pimbot-test-key"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Call:
    method: str
    path: str
    body: Any
    authorization: str
    status: int = 200
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    name: str
    upn: str = ""
    role: str = "user"  # Teams' userRole: user | guest | anonymous
    tenant: str = TENANT


class FakeBotFramework:
    def __init__(self, members: list[Member] | None = None) -> None:
        self.members = {m.user_id: m for m in members or []}
        self.calls: list[Call] = []
        self.activities: dict[tuple[str, str], dict[str, Any]] = {}  # (conversation, id) → now
        self.faults: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.keys_reachable = True
        self.endorsements = ["msteams", "webchat"]
        self._ids = itertools.count(1767225700001)
        self.port = unused_port()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return self.base_url + "/teams/"

    @property
    def metadata_url(self) -> str:
        return self.base_url + "/v1/.well-known/openidconfiguration"

    def env(self) -> dict[str, str]:
        """The settings that point pimbot's Teams adapter here."""
        return {"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "test-secret",
                "MICROSOFT_APP_TENANT_ID": TENANT,
                "PIMBOT_TEAMS_OPENID_METADATA_URL": self.metadata_url,
                "PIMBOT_TEAMS_LOGIN_URL": self.base_url + "/login"}

    def fail(self, route: str, status: int, times: int = 1,
             headers: dict[str, str] | None = None) -> None:
        """The next ``times`` calls whose ``METHOD path`` contains ``route`` answer ``status``."""
        self.faults.setdefault(route, []).extend([(status, headers or {})] * times)

    def mint(self, *, service_url: str | None = None, audience: str = APP_ID,
             issuer: str = ISSUER, expires_in: int = 3600, key: Any = None, kid: str = KID,
             not_before: int | None = None) -> str:
        now = int(time.time())
        claims = {"serviceurl": service_url or self.service_url, "iss": issuer, "aud": audience,
                  "nbf": now - 5 if not_before is None else not_before,
                  "exp": now + expires_in}
        return jwt.encode(claims, key or _KEY, algorithm="RS256", headers={"kid": kid})

    @staticmethod
    def other_key() -> Any:
        return _OTHER_KEY

    # -- what was sent -----------------------------------------------------------------------

    def sent(self, conversation: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method in {"POST", "PUT"} and "/activities" in c.path
                and (conversation is None or f"/conversations/{conversation}/" in c.path)]

    def cards_in(self, conversation: str) -> list[dict[str, Any]]:
        """The Adaptive Cards a conversation shows now (as last updated), oldest first."""
        return [card for (conv, _), activity in self.activities.items() if conv == conversation
                for card in _cards(activity)]

    def texts_in(self, conversation: str) -> list[str]:
        return [str(a.get("text")) for (conv, _), a in self.activities.items()
                if conv == conversation and a.get("text")]

    # -- the server ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        raw = await request.text()
        body: Any = raw
        if request.content_type == "application/json" and raw:
            body = json.loads(raw)
        call = Call(request.method, path, body, request.headers.get("Authorization", ""))
        self.calls.append(call)
        fault = self._fault(f"{request.method} {path}")
        if fault is not None:
            call.status = fault[0]
            return web.json_response({"error": {"code": "Fault", "message": "injected"}},
                                     status=fault[0], headers=fault[1])
        status, answer = self._answer(request.method, path, body)
        call.status, call.answer = status, answer
        return web.json_response(answer, status=status)

    def _fault(self, route: str) -> tuple[int, dict[str, str]] | None:
        for key, queue in self.faults.items():
            if key in route and queue:
                return queue.pop(0)
        return None

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if path.endswith("/.well-known/openidconfiguration"):
            if not self.keys_reachable:
                return 503, {}
            return 200, {"issuer": ISSUER, "jwks_uri": self.base_url + "/v1/.well-known/keys",
                         "id_token_signing_alg_values_supported": ["RS256"]}
        if path.endswith("/.well-known/keys"):
            jwk = json.loads(RSAAlgorithm.to_jwk(_KEY.public_key()))
            jwk.update(kid=KID, use="sig", endorsements=self.endorsements)
            return 200, {"keys": [jwk]}
        if path.startswith("/login/") and path.endswith("/oauth2/v2.0/token"):
            return 200, {"token_type": "Bearer", "expires_in": 3599,
                         "access_token": f"bot-token-{next(self._ids)}"}
        if not path.startswith("/teams/v3/conversations"):
            return 404, {}
        return self._connector(method, path.removeprefix("/teams/v3/conversations"), body)

    def _connector(self, method: str, rest: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = [p for p in rest.split("/") if p]
        if method == "POST" and not parts:  # create a conversation
            activity_id = str(next(self._ids))
            channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
            if channel:
                conversation = f"{channel};messageid={activity_id}"
            else:
                conversation = "a:created-" + body["members"][0]["id"]
            self.activities[(conversation, activity_id)] = dict(body.get("activity") or {})
            return 201, {"id": conversation, "activityId": activity_id}
        conversation = parts[0]
        if len(parts) == 3 and parts[1] == "members" and method == "GET":
            member = self.members.get(parts[2])
            if member is None:
                return 404, {"error": {"code": "MemberNotFoundInConversation"}}
            return 200, {"id": member.user_id, "name": member.name, "email": member.email,
                         "userPrincipalName": member.upn or member.email,
                         "tenantId": member.tenant, "userRole": member.role}
        if len(parts) >= 2 and parts[1] == "activities":
            if method == "POST":
                activity_id = str(next(self._ids))
                self.activities[(conversation, activity_id)] = dict(body)
                return 201, {"id": activity_id}
            if method == "PUT" and len(parts) == 3:
                if (conversation, parts[2]) not in self.activities:
                    return 404, {"error": {"code": "ActivityNotFound"}}
                self.activities[(conversation, parts[2])] = dict(body)
                return 200, {"id": parts[2]}
            if method == "DELETE" and len(parts) == 3:
                self.activities.pop((conversation, parts[2]), None)
                return 200, {}
        return 400, {"error": {"code": "BadRequest"}}


def _cards(activity: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["content"] for a in activity.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"]
