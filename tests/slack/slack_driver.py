"""Signed Slack requests (slash commands, clicks, modal submits, events) to /slack/events."""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from fake_slack import FakeSlack, fixture

from fixture_paths import FIXTURES
from pimbot_slack.verify import signed_headers

SIGNING_SECRET = "e3b9f1c2a4d5e6f708192a3b4c5d6e7f"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
DM_CHANNEL = "D0PIMDM001"
DM_NAME = "directmessage"  # Slack's channel_name for a direct message


def dm_of(user_id: str) -> str:
    """The id of a person's DM with pimbot (as the fake Slack gives it)."""
    return "D" + user_id[1:]


class SlackDriver:
    """What Slack would send, signed with the test signing secret and the current time.

    Like Slack, each request it makes carries fresh unique values (a slash command's or a
    submit's ``trigger_id``, a click's ``action_ts``); a replay is sending the same bytes again.
    """

    def __init__(self, client: TestClient[Any, Any], fake: FakeSlack) -> None:
        self.client = client
        self.fake = fake
        self._n = 0

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        secret: str = SIGNING_SECRET,
    ) -> ClientResponse:
        ts = int(time.time()) if timestamp is None else timestamp
        sent = signed_headers(secret, body, ts, content_type)
        sent.update(headers or {})
        return await self.client.post("/slack/events", data=body.encode(), headers=sent)

    def next_name(self) -> str:
        self._n += 1
        return f"r{self._n}"

    def _unique(self) -> str:
        self._n += 1
        return f"{self._n:06d}"

    def slash_body(
        self,
        user_id: str,
        text: str,
        name: str,
        channel_id: str = DM_CHANNEL,
        channel_name: str = DM_NAME,
    ) -> str:
        fields = dict(
            parse_qsl((FIXTURES / "slash_command.txt").read_text(), keep_blank_values=True)
        )
        fields.update(
            user_id=user_id,
            text=text,
            channel_id=channel_id,
            channel_name=channel_name,
            response_url=self.fake.response_url(name),
            trigger_id=f"trigger-{name}",
        )
        return urlencode(fields)

    async def slash(
        self, user_id: str, text: str, name: str = "", channel: tuple[str, str] | None = None
    ) -> tuple[ClientResponse, str]:
        """``/pim TEXT`` typed in ``channel`` (id, name): by default the DM with pimbot."""
        name = name or self.next_name()
        channel_id, channel_name = channel or (DM_CHANNEL, DM_NAME)
        body = self.slash_body(user_id, text, name, channel_id, channel_name)
        response = await self.post(body, FORM)
        return response, name

    async def click(
        self, user_id: str, action_id: str, value: str, name: str = "", home: bool = False
    ) -> tuple[ClientResponse, str]:
        body, name = self.click_body(user_id, action_id, value, name, home)
        return await self.post(body, FORM), name

    def click_body(
        self, user_id: str, action_id: str, value: str, name: str = "", home: bool = False
    ) -> tuple[str, str]:
        """The ``payload=`` body of a button press (``block_actions.json`` reshaped)."""
        name = name or self.next_name()
        payload = copy.deepcopy(fixture("block_actions.json"))
        payload["user"]["id"] = user_id
        payload["actions"][0].update(
            action_id=action_id, value=value, action_ts=f"{time.time():.0f}.{self._unique()}"
        )
        payload["trigger_id"] = f"trigger-{name}"
        payload["response_url"] = self.fake.response_url(name)
        payload["channel"] = {"id": dm_of(user_id), "name": DM_NAME}  # the card's DM
        payload["container"]["channel_id"] = dm_of(user_id)
        if home:
            payload["container"] = {"type": "view", "view_id": "V0PIMHOME1"}
            payload["view"] = {"id": "V0PIMHOME1", "type": "home"}
            payload.pop("response_url")
            payload.pop("message")
            payload.pop("channel")
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}), name

    async def submit(
        self, user_id: str, view: dict[str, Any], values: dict[str, str]
    ) -> ClientResponse:
        """Submit a modal pimbot opened (``view`` as sent to views.open) with these values."""
        return await self.post(self.submit_body(user_id, view, values), FORM)

    def submit_body(self, user_id: str, view: dict[str, Any], values: dict[str, str]) -> str:
        payload = copy.deepcopy(fixture("view_submission.json"))
        payload["user"]["id"] = user_id
        payload["trigger_id"] = f"trigger-submit-{self._unique()}"
        submitted = copy.deepcopy(view)
        state: dict[str, Any] = {}
        for block in submitted["blocks"]:
            if block["type"] != "input":
                continue
            element = block["element"]
            value = values.get(block["block_id"])
            if element["type"] == "static_select":
                option = {"text": {"type": "plain_text", "text": value or ""}, "value": value}
                entry: dict[str, Any] = {
                    "type": "static_select",
                    "selected_option": option if value else None,
                }
            else:
                entry = {"type": "plain_text_input", "value": value}
            state[block["block_id"]] = {element["action_id"]: entry}
        submitted["state"] = {"values": state}
        payload["view"].update(submitted)
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})

    async def home_opened(
        self, user_id: str, event_id: str, retry: int = 0, team_id: str = ""
    ) -> ClientResponse:
        body = copy.deepcopy(fixture("app_home_opened.json"))
        body["event"]["user"] = user_id
        body["event_id"] = event_id
        if team_id:
            body["team_id"] = team_id
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(json.dumps(body), JSON, headers=headers if retry else None)
