"""Teams through the composition root: ``pimbot run`` mounts ``POST /api/messages`` on the one
HTTP server, and empty credentials keep Teams off with a message saying why."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from fake_connector import FakeBotFramework
from teams_driver import BOB, TeamsDriver

from server_process import clean_env, run_pimbot
from test_server_http import running


async def test_pimbot_run_serves_api_messages_authenticated(
        tmp_path: Path, fake_teams: FakeBotFramework) -> None:
    async with running(tmp_path, **fake_teams.env()) as server, \
            aiohttp.ClientSession() as http:
        activity = TeamsDriver(None, fake_teams).installed(BOB)  # type: ignore[arg-type]
        body = json.dumps(activity)
        headers = {"Content-Type": "application/json"}
        async with http.post(f"{server}/api/messages", data=body, headers=headers) as response:
            assert response.status == 401
        headers["Authorization"] = "Bearer " + fake_teams.mint()
        async with http.post(f"{server}/api/messages", data=body, headers=headers) as response:
            assert response.status == 201
        async with http.get(f"{server}/healthz") as response:
            assert response.status == 200


def test_teams_forced_without_credentials_stays_off_and_says_why(tmp_path: Path) -> None:
    done = run_pimbot(["run"], tmp_path, env=clean_env(tmp_path, PIMBOT_ADAPTERS="teams"))
    assert done.returncode == 1
    assert "MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD are empty" in done.stderr
    assert "PIMBOT_TEAMS_DEV_MODE=1" in done.stderr


def test_an_app_id_without_a_password_leaves_teams_off_with_a_warning(tmp_path: Path) -> None:
    env = clean_env(tmp_path, MICROSOFT_APP_ID="1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
    done = run_pimbot(["run"], tmp_path, env=env)
    assert done.returncode == 0, done.stderr  # the console ran, to the end of its input
    assert "Teams stays off: MICROSOFT_APP_PASSWORD is empty" in done.stderr


async def test_a_deeply_nested_activity_is_refused_as_not_an_activity(
        tmp_path: Path, fake_teams: FakeBotFramework) -> None:
    """A body of 100,000 nested arrays (well under the size limit) makes the JSON decoder
    run out of recursion: it is refused 400 like any other non-activity, never a 500, and
    the server still serves the next activity."""
    logs: list[str] = []
    async with running(tmp_path, logs, **fake_teams.env()) as server, \
            aiohttp.ClientSession() as http:
        headers = {"Content-Type": "application/json",
                   "Authorization": "Bearer " + fake_teams.mint()}
        async with http.post(f"{server}/api/messages", data="[" * 100_000,
                             headers=headers) as response:
            assert response.status == 400
            assert "not a Bot Framework activity" in await response.text()
        body = json.dumps(TeamsDriver(None, fake_teams).installed(BOB))  # type: ignore[arg-type]
        async with http.post(f"{server}/api/messages", data=body, headers=headers) as response:
            assert response.status == 201
    assert "Traceback" not in logs[0]
