"""A fake Slack Web API: an aiohttp server on a free local port that records every call.

It answers like Slack, with the shapes in ../shared/fixtures (``chat_postMessage_ok.json``,
``users_info_ok.json``, …), knows a small directory of users, takes ``response_url`` posts, and
can inject errors per method: an ``ok: false`` answer or an HTTP 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fixture_paths import FIXTURES

# (user id, email, name) of the people in the fake workspace
ALICE = ("U0ALICE001", "alice@example.com", "Alice Approver")
BOB = ("U0BOB00001", "bob@example.com", "Bob Requester")
CAROL = ("U0CAROL001", "carol@example.com", "Carol Outsider")
NOMAIL = ("U0NOMAIL01", "", "No Mail")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class ApiCall:
    method: str  # "chat.postMessage", … or "response_url"
    args: dict[str, Any]
    status: int = 200
    path: str = ""
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Upload:
    """A file uploaded the v2 way: URL asked for, bytes posted, upload completed."""

    file_id: str
    filename: str
    length: int
    alt_txt: str = ""
    data: bytes = b""
    title: str = ""
    channel_id: str = ""  # set by files.completeUploadExternal
    completed: bool = False
    deleted: bool = False  # by files.delete


WORKSPACE = "T0PIMTEAM1"  # the fake workspace, as auth_test_ok.json names it


@dataclass(frozen=True)
class FakeUser:
    user_id: str
    email: str  # "" for a profile with no email
    name: str
    team_id: str = WORKSPACE  # another team: a Slack Connect person from elsewhere
    restricted: bool = False  # a multi-channel guest
    ultra_restricted: bool = False  # a single-channel guest
    stranger: bool = False  # users.info's is_stranger
    enterprise_id: str = ""  # an Enterprise Grid organisation (users.info's enterprise_user)


class FakeSlack:
    def __init__(self, users: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.users: dict[str, FakeUser] = {}
        for user_id, (email, name) in (users or {}).items():
            self.add_user(user_id, email, name)
        self.calls: list[ApiCall] = []
        self._faults: dict[str, list[Fault]] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self.socket_frames: list[dict[str, Any]] = []  # what the app wrote on the socket
        self.socket_connected = asyncio.Event()
        self._socket: web.WebSocketResponse | None = None
        self._ts = itertools.count(1)
        self.uploads: dict[str, Upload] = {}
        self.auth = dict(fixture("auth_test_ok.json"))  # what auth.test answers
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) → posted args
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- set-up ------------------------------------------------------------------------------

    def add_user(self, user_id: str, email: str, name: str, **traits: Any) -> None:
        """A person Slack knows; ``traits`` are FakeUser's team / guest / stranger fields."""
        self.users[user_id] = FakeUser(user_id, email, name, **traits)

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 200 ``ok: false``."""
        body = {"ok": False, "error": error}
        self._faults.setdefault(method, []).extend(Fault(200, body) for _ in range(times))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``Retry-After``."""
        body = fixture("error_ratelimited_429.json")
        headers = {"Retry-After": str(retry_after)}
        self._faults.setdefault(method, []).extend(Fault(429, body, headers) for _ in range(times))

    def hold(self, method: str) -> asyncio.Event:
        """Calls of ``method`` wait (recorded) until the returned event is set."""
        gate = self._holds.setdefault(method, asyncio.Event())
        return gate

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket_mode)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def socket_send(self, frame: dict[str, Any]) -> None:
        """Push a Socket Mode frame (an envelope) to the connected app."""
        assert self._socket is not None, "no Socket Mode connection"
        await self._socket.send_json(frame)

    async def socket_ack(self, envelope_id: str) -> dict[str, Any]:
        """Wait for the app's ack of one envelope."""
        while True:
            for frame in self.socket_frames:
                if frame.get("envelope_id") == envelope_id:
                    return frame
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # -- what happened -------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method and c.status == 200]

    def responses(self, name: str | None = None) -> list[ApiCall]:
        return [
            c
            for c in self.calls
            if c.method == "response_url" and (name is None or c.path.endswith("/" + name))
        ]

    def posts_to(self, channel: str) -> list[ApiCall]:
        return [c for c in self.calls_to("chat.postMessage") if c.args.get("channel") == channel]

    def files_in(self, channel_id: str) -> list[Upload]:
        """Files whose upload completed into this conversation (deleted ones included)."""
        return [u for u in self.uploads.values() if u.completed and u.channel_id == channel_id]

    def history(self, channel_id: str) -> str:
        """What a reader of the conversation can still see: its messages that were not
        deleted, and its files that were not deleted (their bytes as hex), as one string."""
        texts = [json.dumps(args) for (channel, _), args in self.messages.items()
                 if channel == channel_id]
        texts += [u.data.hex() + u.title for u in self.files_in(channel_id) if not u.deleted]
        return "\n".join(texts)

    def outgoing_text(self) -> str:
        """Everything pimbot sent to Slack, as one JSON string (for leak checks)."""
        return "\n".join(json.dumps(c.args) for c in self.calls)

    # -- the server ----------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        gate = self._holds.get(method)
        if gate is not None:
            waiting = ApiCall(method, args, status=0)  # seen, not yet answered
            self.calls.append(waiting)
            await gate.wait()
            self.calls = [c for c in self.calls if c is not waiting]
        faults = self._faults.get(method)
        if faults:
            fault = faults.pop(0)
            self.calls.append(ApiCall(method, args, fault.status))
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        body = answer(args) if answer else {"ok": False, "error": "unknown_method"}
        self.calls.append(ApiCall(method, args, answer=body))
        return web.json_response(body)

    async def _respond(self, request: web.Request) -> web.Response:
        self.calls.append(ApiCall("response_url", await request.json(), path=request.path))
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal handed out: takes the raw bytes."""
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload.data = await request.read()
        self.calls.append(ApiCall("upload", {"length": len(upload.data)}, path=request.path))
        return web.Response(text=f"OK - {len(upload.data)}")

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._socket = ws
        await ws.send_json(fixture("socket_mode_envelope.json")[0])  # hello
        self.socket_connected.set()
        async for message in ws:
            if message.type.name == "TEXT":
                self.socket_frames.append(json.loads(message.data))
        return ws

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(self.auth)

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user_json("users_info_ok.json", user)}

    def _users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        user = next((u for u in self.users.values() if u.email and u.email == email), None)
        if user is None:
            return dict(fixture("users_lookupByEmail_not_found.json"))
        return {"ok": True, "user": self._user_json("users_lookupByEmail_ok.json", user)}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(fixture("chat_postMessage_ok.json"))
        channel = _channel_id(str(args.get("channel", "")))
        ts = f"1767225612.{next(self._ts):06d}"
        body.update(channel=channel, ts=ts)
        body["message"].update(ts=ts, text=args.get("text", ""), blocks=args.get("blocks", []))
        self.messages[(channel, ts)] = dict(args)
        return dict(body)

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        """Like Slack: the bot's own message goes; an unknown (or deleted) one is an error."""
        key = (str(args.get("channel", "")), str(args.get("ts", "")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        del self.messages[key]
        return {"ok": True, "channel": key[0], "ts": key[1]}

    def _files_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        upload = self.uploads.get(str(args.get("file", "")))
        if upload is None or upload.deleted:
            return {"ok": False, "error": "file_not_found"}
        upload.deleted = True
        return {"ok": True}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(fixture("chat_update_ok.json"))
        body.update(channel=args.get("channel"), ts=args.get("ts"), text=args.get("text", ""))
        body["message"].update(text=args.get("text", ""), blocks=args.get("blocks", []))
        key = (str(args.get("channel", "")), str(args.get("ts", "")))
        if key in self.messages:
            self.messages[key] = dict(args)
        return dict(body)

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": f"1767225700.{next(self._ts):06d}"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(fixture("views_open_ok.json"))
        body["view"].update(args.get("view") or {})
        return dict(body)

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": {"id": "V0PIMHOME1", **(args.get("view") or {})}}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(fixture("conversations_open_ok.json"))
        body["channel"]["id"] = _channel_id(str(args.get("users", "")))
        return dict(body)

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F0PIM{next(self._ts):05d}"
        self.uploads[file_id] = Upload(
            file_id, str(args["filename"]), int(args["length"]), str(args.get("alt_txt") or "")
        )
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
            "file_id": file_id,
        }

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(str(args.get("files", "")))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        done: list[dict[str, Any]] = []
        for item in files:
            upload = self.uploads.get(str(item.get("id", "")))
            if upload is None or len(upload.data) != upload.length:
                return {"ok": False, "error": "file_not_found"}
            upload.title = str(item.get("title") or upload.filename)
            upload.channel_id = str(args.get("channel_id") or "")
            upload.completed = True
            done.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": done}

    def _user_json(self, template: str, user: FakeUser) -> dict[str, Any]:
        data = copy.deepcopy(fixture(template)["user"])
        data.update(id=user.user_id, name=user.name.lower().replace(" ", "."), real_name=user.name)
        data.update(team_id=user.team_id, is_restricted=user.restricted,
                    is_ultra_restricted=user.ultra_restricted)
        if user.stranger:
            data["is_stranger"] = True
        if user.enterprise_id:
            data["enterprise_user"] = {
                "id": user.user_id, "enterprise_id": user.enterprise_id,
                "enterprise_name": "Contoso", "is_admin": False, "is_owner": False,
                "teams": [user.team_id],
            }
        data["profile"].update(real_name=user.name, display_name=user.name, team=user.team_id)
        if user.email:
            data["profile"]["email"] = user.email
        else:
            data["profile"].pop("email", None)
        return dict(data)


def _channel_id(channel: str) -> str:
    """A user id posts to that user's DM (``D…``); ``#name`` becomes a stable ``C…`` id."""
    if channel.startswith(("U", "W")):
        return "D" + channel[1:]
    if channel.startswith("#"):
        return "C" + channel[1:].upper().replace("-", "")[:9]
    return channel


async def _arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(dict(await request.post()))
    for key in ("blocks", "view"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args
