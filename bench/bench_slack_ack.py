"""Slack ack latency: pimbot's ``POST /slack/events`` against a bare slack-bolt app, side by side.

Signed ``/pim help`` slash commands are sent open-loop at ``--rate`` per second (default 50) for
``--duration`` seconds (default 10) to both servers in the same run, interleaved, so both see
the same machine. Slack wants an ack within 3 s; the target is p99(pimbot) ≤ 1.25 × p99(bare).
Both apps run in this process against a local stand-in for the Slack Web API; pimbot's work
after the ack (the core, the ephemeral answer) shares the event loop, as it would in production.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.ports import SystemClock
from pimbot.store.database import Database
from pimbot.testing.fakes import RecordingProvider
from pimbot.workflow.core import PimCore
from pimbot_slack.app import SlackAdapter
from pimbot_slack.verify import signed_headers

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
TARGET_RATIO = 1.25
SLACK_DEADLINE_S = 3.0
POLICY = """
admins: [admin@example.com]
providers:
  demo: {type: noop}
roles:
  staging-deploy:
    description: Deploy to staging
    provider: demo
    max_duration: 8h
assignments:
  - {user: bench@example.com, role: staging-deploy, type: eligible}
"""


async def fake_slack_api(request: web.Request) -> web.Response:
    method = request.match_info.get("method", "")
    if method == "users.info":
        profile = {"email": "bench@example.com", "real_name": "Bench"}
        user = {"id": "U0BENCH001", "team_id": "T0", "profile": profile}
        return web.json_response({"ok": True, "user": user})
    if method == "auth.test":
        return web.json_response(
            {"ok": True, "team_id": "T0", "user_id": "U0BOT", "bot_id": "B0", "team": "t"}
        )
    return web.json_response({"ok": True})


async def serve(app: web.Application, stack: AsyncExitStack) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}"


def bare_app(api_url: str) -> web.Application:
    """A slack-bolt app that only acks: the floor pimbot is compared with."""
    bolt = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=api_url))

    @bolt.command("/pim")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    return app


async def pimbot_app(api_url: str, folder: Path, stack: AsyncExitStack) -> web.Application:
    db = Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await db.upgrade()
    stack.push_async_callback(db.dispose)
    policy = parse_policy(POLICY)
    clock = SystemClock()
    await apply_policy(db, policy, clock)
    core = PimCore(db, policy, {"demo": RecordingProvider()}, clock)
    await core.start()
    stack.push_async_callback(core.stop)
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET}
    adapter = SlackAdapter.from_env({**env, "PIMBOT_SLACK_API_URL": api_url + "/api/"}, core)
    stack.push_async_callback(adapter.stop)
    app = web.Application()
    adapter.mount(app)
    return app


async def one_ack(session: ClientSession, base: str, respond_url: str, trigger: str) -> float:
    """One signed ``/pim help``; ``trigger`` is its fresh trigger_id (Slack's, per command)."""
    fields = {
        "team_id": "T0",
        "channel_id": "D0BENCH01",
        "user_id": "U0BENCH001",
        "command": "/pim",
        "text": "help",
        "response_url": respond_url,
        "trigger_id": trigger,
    }
    body = urlencode(fields)
    headers = signed_headers(SECRET, body, int(time.time()), "application/x-www-form-urlencoded")
    started = time.perf_counter()
    async with session.post(base + "/slack/events", data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{base} answered {response.status}")
    return time.perf_counter() - started


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1]}


async def load(
    session: ClientSession, bases: dict[str, str], respond: str, rate: float, duration: float
) -> dict[str, list[float]]:
    """Open loop: one request to each server every 1/rate seconds, fired without waiting."""
    tasks: dict[str, list[asyncio.Task[float]]] = {name: [] for name in bases}
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        for name, base in bases.items():
            ack = one_ack(session, base, respond, f"7391.{i}")
            tasks[name].append(asyncio.create_task(ack))
    return {name: list(await asyncio.gather(*group)) for name, group in tasks.items()}


async def main(args: Any) -> dict[str, Any]:
    rate = float(getattr(args, "rate", None) or 50)
    duration = float(getattr(args, "duration", None) or 10)
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        slack = web.Application()
        slack.router.add_route("*", "/api/{method}", fake_slack_api)
        slack.router.add_post("/respond", fake_slack_api)
        api = await serve(slack, stack)
        bases = {
            "pimbot": await serve(await pimbot_app(api, folder, stack), stack),
            "bare": await serve(bare_app(api + "/api/"), stack),
        }
        session = await stack.enter_async_context(ClientSession())
        for base in bases.values():  # warm up: auth.test, first identity lookup, connections
            await one_ack(session, base, api + "/respond", "7391.warm-up")
        samples = await load(session, bases, api + "/respond", rate, duration)
    pim, bare = summary(samples["pimbot"]), summary(samples["bare"])
    ratio = pim["p99"] / bare["p99"] if bare["p99"] else float("inf")
    over = sum(1 for s in samples["pimbot"] if s > SLACK_DEADLINE_S)
    report: dict[str, Any] = {"requests_each": len(samples["pimbot"]), "rate_per_s": rate}
    for name, stats in (("pimbot", pim), ("bare", bare)):
        report.update({f"{name}_{k}_ms": round(v * 1000, 2) for k, v in stats.items()})
    report.update(
        p99_ratio=round(ratio, 3),
        acks_over_3s=over,
        target=f"p99 ratio <= {TARGET_RATIO} and no ack over {SLACK_DEADLINE_S:g}s",
        meets_target=ratio <= TARGET_RATIO and over == 0,
    )
    # the summary table's columns (pimbot bench)
    report["figure"] = (f"ack p99 {report['pimbot_p99_ms']} ms vs bare slack-bolt "
                        f"{report['bare_p99_ms']} ms ({report['p99_ratio']}x), {over} over 3 s")
    report["met"] = report["meets_target"]
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=10)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
