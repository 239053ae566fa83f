"""A round-robin load balancer in front of replicas: a local aiohttp reverse proxy.

Each request goes to the next replica in turn (what a plain L7 balancer does); one that
refuses the connection (a killed replica) is skipped and the request goes to the next, like
nginx's ``proxy_next_upstream error``. Which replica served each request is recorded, so a
test can say "made through A, clicked on B" and prove it.
"""

from __future__ import annotations

import itertools
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection",
                        "keep-alive"})


@dataclass(frozen=True)
class Served:
    path: str
    backend: int  # index of the replica that answered
    status: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RoundRobinBalancer:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.served: list[Served] = []
        self.port = _free_port()
        self._turn = itertools.cycle(range(len(backends)))
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_to(self, index: int) -> None:
        """Make replica ``index`` the next in turn (round-robin goes on from there)."""
        order = list(range(len(self.backends)))
        self._turn = itertools.cycle(order[index:] + order[:index])

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                           auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        for _ in self.backends:
            index = next(self._turn)
            try:
                async with self._http.request(request.method, self.backends[index]
                                              + request.path_qs, data=body,
                                              headers=headers) as answer:
                    raw = await answer.read()
                    kept = {k: v for k, v in answer.headers.items()
                            if k.lower() not in HOP_BY_HOP}
                    self.served.append(Served(request.path, index, answer.status))
                    kept["X-Served-By"] = str(index)
                    return web.Response(status=answer.status, body=raw, headers=kept)
            except aiohttp.ClientConnectionError:
                continue  # that replica is gone: the next one takes the request
        return web.Response(status=502, text="no replica answered")
