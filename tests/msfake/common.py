"""What the fake's three services share: error bodies, injected faults, bearer tokens."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from msfake.state import CloudState, Seen, new_guid

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
APP_KEY = web.RequestKey("app", str)  # the client id the request's token was issued to


def error(status: int, code: str, message: str, *, service: str = "graph",
          headers: dict[str, str] | None = None) -> web.Response:
    """``{"error": {"code", "message"}}`` as Graph and ARM write it (Graph adds innerError)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if service == "graph":
        body["innerError"] = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                              "request-id": new_guid(), "client-request-id": new_guid()}
    return web.json_response({"error": body}, status=status, headers=headers)


def fault_middleware(state: CloudState, service: str) -> Any:
    """Records every request, then answers an injected fault instead, if one matches."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw and request.content_type == "application/json" \
                else dict(await request.post()) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        state.seen.append(Seen(service, request.method, request.path_qs, body))
        fault = state.take_fault(service, request.method, request.path_qs)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            if service == "login":
                return web.json_response({"error": fault.code, "error_description":
                                          fault.message}, status=fault.status, headers=headers)
            return error(fault.status, fault.code, fault.message, service=service,
                         headers=headers)
        return await handler(request)

    return middleware


def auth_middleware(state: CloudState, service: str, audience: Callable[[], str]) -> Any:
    """A valid, unexpired bearer token for this service's audience, or 401 as each service
    answers it (Graph: InvalidAuthenticationToken; ARM: ExpiredAuthenticationToken)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        token = state.tokens.get(header.removeprefix("Bearer ")) if header.startswith(
            "Bearer ") else None
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token", '
                                         'error_description="The access token is invalid"'}
        if token is None:
            code = "InvalidAuthenticationToken" if service == "graph" else \
                "AuthenticationFailed"
            return error(401, code, "Access token validation failure. Invalid audience."
                         if header else "Access token is empty.", service=service,
                         headers=challenge)
        if token.audience != audience():
            return error(401, "InvalidAuthenticationToken", "Access token validation failure. "
                         "Invalid audience.", service=service, headers=challenge)
        if token.expired:
            if service == "graph":
                return error(401, "InvalidAuthenticationToken",
                             "Lifetime validation failed, the token is expired.",
                             headers=challenge)
            return error(401, "ExpiredAuthenticationToken",
                         "The access token expiry UTC time is earlier than current UTC time.",
                         service=service, headers=challenge)
        request[APP_KEY] = token.app
        return await handler(request)

    return middleware


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="not a JSON object")
    return body


def page(request: web.Request, items: list[Any], size: int) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the absolute link to the next (``$skiptoken``-style)."""
    start = int(request.query.get("$skiptoken") or request.query.get("skiptoken") or 0)
    chunk = items[start:start + size]
    if start + size >= len(items):
        return chunk, None
    query = dict(request.query)
    query.pop("$skiptoken", None)
    query.pop("skiptoken", None)
    url = request.url.with_query({**query, "$skiptoken": str(start + size)})
    return chunk, str(url)
