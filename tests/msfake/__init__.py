"""A local fake of the Microsoft cloud: Graph, Azure Resource Manager and the identity
platform's token endpoint, each an aiohttp server over HTTPS on 127.0.0.1 (three ports, one
tenant's state), answering with the shapes of Microsoft's published references.

    async with microsoft_cloud(tmp_path) as cloud:
        config = ProviderConfig("entra", "entra-group", cloud.settings())
        providers = build_providers({...}, cloud.env, http=cloud.session)
        cloud.state.fail("graph", 429, "TooManyRequests", retry_after="3")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from msfake import arm, graph, login
from msfake.common import auth_middleware, fault_middleware
from msfake.state import APP, SECRET, SUBSCRIPTION, TENANT, CloudState
from msfake.tls import TestCertificate, make_certificate

__all__ = ["APP", "SECRET", "SECRET_ENV", "SUBSCRIPTION", "TENANT", "CloudState",
           "MicrosoftCloud", "microsoft_cloud"]

SECRET_ENV = "PIM_GRAPH_SECRET"


@dataclass
class MicrosoftCloud:
    state: CloudState
    certificate: TestCertificate
    authority: str
    graph_url: str
    arm_url: str
    session: aiohttp.ClientSession  # trusts the fake's CA: pass it as the providers' http=

    @property
    def env(self) -> dict[str, str]:
        return {SECRET_ENV: SECRET}

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A Microsoft provider's settings pointing at this fake (client secret by default)."""
        base: dict[str, Any] = {
            "tenant_id": TENANT, "client_id": APP, "client_secret_env": SECRET_ENV,
            "authority": self.authority, "graph_url": self.graph_url,
        }
        if extra.pop("arm", False):
            base["arm_url"] = self.arm_url
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}


async def _site(app: web.Application, certificate: TestCertificate) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificate.server_context())
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"https://{host}:{port}"


@asynccontextmanager
async def microsoft_cloud(directory: Path) -> AsyncIterator[MicrosoftCloud]:
    state = CloudState()
    certificate = make_certificate(directory)
    token_service, graph_service, arm_service = (
        login.Login(state), graph.Graph(state), arm.Arm(state))
    urls: dict[str, str] = {}
    apps = {
        "login": web.Application(middlewares=[fault_middleware(state, "login")]),
        "graph": web.Application(middlewares=[
            fault_middleware(state, "graph"),
            auth_middleware(state, "graph", lambda: urls["graph"])]),
        "arm": web.Application(middlewares=[
            fault_middleware(state, "arm"), auth_middleware(state, "arm", lambda: urls["arm"])]),
    }
    apps["login"].add_routes(login.routes(token_service))
    apps["graph"].add_routes(graph.routes(graph_service))
    apps["arm"].add_routes(arm.routes(arm_service))
    runners = []
    for name, app in apps.items():
        runner, urls[name] = await _site(app, certificate)
        runners.append(runner)
    token_service.url, graph_service.url, arm_service.url = urls["login"], urls["graph"], \
        urls["arm"]
    token_service.graph_audience = urls["graph"]
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=certificate.client_context()))
    try:
        yield MicrosoftCloud(state, certificate, urls["login"], urls["graph"], urls["arm"],
                             session)
    finally:
        await session.close()
        for runner in runners:
            await runner.cleanup()
