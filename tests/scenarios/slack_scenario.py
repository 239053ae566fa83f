"""The Slack Driver: signed requests to ``/slack/events``, cards read back from the fake Slack.

What a person sees is what pimbot sent to Slack for them: DMs (as redrawn by ``chat.update``),
ephemeral answers through their requests' ``response_url``, and modals opened with their
trigger ids. Buttons are pressed with the ``action_id`` and ``value`` the card carried.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import ClientResponse
from fake_slack import ApiCall, FakeSlack
from scenario_driver import ALICE, BOB, CAROL, LEAD, SeenCard
from slack_driver import dm_of
from slack_rig import Rig, running

from pimbot.store.database import Database
from pimbot_slack.translate import read_metadata

USERS = {
    BOB: ("U0BOB00001", "Bob Requester"),
    ALICE: ("U0ALICE001", "Alice Approver"),
    CAROL: ("U0CAROL001", "Carol Approver"),
    LEAD: ("U0LEAD0001", "Sec Lead"),
}
TONES = (":white_check_mark: ", ":warning: ", ":rotating_light: ")


@dataclass(frozen=True)
class SlackCard:
    seen: SeenCard
    buttons: dict[str, tuple[str, str]]  # label → (action_id, value)
    questions: dict[str, str]  # label → its confirmation dialog's title and text


class SlackScenarioDriver:
    name = "slack"

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.provider = rig.provider
        self.clock = rig.clock
        self.owner: dict[str, str] = {}  # request name (response_url, trigger) → email

    def _uid(self, who: str) -> str:
        return USERS[who][0]

    async def say(self, who: str, text: str) -> str:
        mark = len(self.rig.slack.calls)
        name = self._name(who)
        await self.rig.driver.slash(self._uid(who), text, name=name)
        await self.rig.settle()
        return self._told(name, mark)

    async def asks_first(self, who: str, label: str) -> str:
        cards = self._cards(who)
        assert cards and label in cards[-1].buttons, f"{who}'s latest card has no {label!r}"
        return cards[-1].questions.get(label, "")  # Slack's own dialog: nothing is sent

    async def click(self, who: str, label: str) -> str:
        cards = self._cards(who)
        assert cards, f"no card was shown to {who}"
        card = cards[-1]
        assert label in card.buttons, f"{who}'s latest card has no {label!r}: {card.seen}"
        action_id, value = card.buttons[label]
        mark = len(self.rig.slack.calls)
        name = self._name(who)
        await self.rig.driver.click(self._uid(who), action_id, value, name=name)
        await self.rig.settle()
        return self._told(name, mark)

    async def submit(self, who: str, values: dict[str, str]) -> str:
        opened = [c for c in self.rig.slack.calls_to("views.open") if self._mine(who, c)]
        assert opened, f"no modal was opened for {who}"
        view = opened[-1].args["view"]
        name = read_metadata(view["private_metadata"]).response_url.rsplit("/", 1)[-1]
        mark = len(self.rig.slack.calls)
        response = await self.rig.driver.submit(self._uid(who), view, initial(view) | values)
        ack = await _ack_errors(response)
        await self.rig.settle()
        return "\n".join(part for part in (ack, self._told(name, mark)) if part)

    def cards_for(self, who: str) -> list[SeenCard]:
        return [card.seen for card in self._cards(who)]

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.rig.settle()

    # -- reading what Slack was sent ------------------------------------------------------

    def _name(self, who: str) -> str:
        name = self.rig.driver.next_name()
        self.owner[name] = who
        return name

    def _mine(self, who: str, call: ApiCall) -> bool:
        """An answer through one of ``who``'s response URLs, or a modal on their trigger."""
        return self.owner.get(_request_name(call)) == who

    def _told(self, name: str, mark: int) -> str:
        """What pimbot answered to the request ``name`` since ``mark``: answers through its
        response URL, and a modal opened with its trigger id."""
        told: list[str] = []
        for call in self.rig.slack.calls[mark:]:
            if call.status == 200 and _request_name(call) == name:
                told.append(blocks_text(call.args.get("view") or call.args))
        return "\n".join(told)

    def _cards(self, who: str) -> list[SlackCard]:
        """Cards DMed to ``who`` (as last updated) and cards in answers to them, in order."""
        slots: dict[tuple[str, str], int] = {}
        cards: list[list[dict[str, Any]]] = []
        dm = dm_of(self._uid(who))
        for call in self.rig.slack.calls:
            if call.status != 200:
                continue
            if call.method == "chat.postMessage" and call.args["channel"] == self._uid(who):
                slots[(dm, str(call.answer["ts"]))] = len(cards)
                cards.append(call.args["blocks"])
            elif call.method == "chat.update" and (call.args["channel"], call.args["ts"]) in slots:
                cards[slots[(call.args["channel"], call.args["ts"])]] = call.args["blocks"]
            elif call.method == "response_url" and self._mine(who, call):
                blocks = call.args.get("blocks") or []
                start = next((i for i, b in enumerate(blocks) if b["type"] == "header"), None)
                if start is not None:
                    cards.append(blocks[start:])
        return [slack_card(blocks) for blocks in cards]


def _request_name(call: ApiCall) -> str:
    """Which driver request a call answers: its response URL's or its trigger id's name."""
    if call.method == "response_url":
        return call.path.rsplit("/", 1)[-1]
    if call.method == "views.open":
        return str(call.args.get("trigger_id", "")).removeprefix("trigger-")
    return ""


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def blocks_text(message: dict[str, Any]) -> str:
    """The text a person reads in a message, answer or modal (the fallback ``text`` only
    when there are no blocks: it repeats them)."""
    fallback = message.get("text")
    parts = [fallback if isinstance(fallback, str) and not message.get("blocks") else ""]
    title = message.get("title")
    if isinstance(title, dict):
        parts.append(str(title.get("text", "")))
    for block in message.get("blocks") or []:
        items = [block.get("text"), block.get("label"), *block.get("fields", []),
                 *block.get("elements", [])]
        parts.extend(str(i.get("text", "")) for i in items if isinstance(i, dict))
        parts.extend(str(i.get("text", {}).get("text", "")) for i in block.get("elements", [])
                     if isinstance(i.get("text"), dict))
    return unescape("\n".join(p for p in parts if p))


def slack_card(blocks: list[dict[str, Any]]) -> SlackCard:
    title = unescape(str(blocks[0]["text"]["text"]))
    for tone in TONES:
        title = title.removeprefix(tone)
    buttons = {
        unescape(e["text"]["text"]): (str(e["action_id"]), str(e["value"]))
        for b in blocks if b["type"] == "actions" for e in b["elements"]
    }
    questions = {
        unescape(e["text"]["text"]): "\n".join(
            str(e["confirm"][part]["text"]) for part in ("title", "text", "confirm", "deny"))
        for b in blocks if b["type"] == "actions" for e in b["elements"] if "confirm" in e
    }
    text = blocks_text({"blocks": [b for b in blocks[1:] if b["type"] != "actions"]})
    return SlackCard(SeenCard(title, text, tuple(buttons)), buttons, questions)


def initial(view: dict[str, Any]) -> dict[str, str]:
    """The values a modal opened with (what was given in the command)."""
    values: dict[str, str] = {}
    for block in view["blocks"]:
        element = block.get("element") or {}
        if block["type"] != "input":
            continue
        if element.get("initial_option"):
            values[block["block_id"]] = str(element["initial_option"]["value"])
        elif element.get("initial_value"):
            values[block["block_id"]] = str(element["initial_value"])
    return values


async def _ack_errors(response: ClientResponse) -> str:
    assert response.status == 200, response.status
    body = await response.text()
    if not body:
        return ""
    data = json.loads(body)
    return "\n".join(str(v) for v in (data.get("errors") or {}).values())


@asynccontextmanager
async def slack_driver(db: Database, policy_text: str) -> AsyncIterator[SlackScenarioDriver]:
    fake = FakeSlack({uid: (email, name) for email, (uid, name) in USERS.items()})
    await fake.start()
    try:
        async with running(db, fake, policy_text) as rig:
            await rig.core.drain()
            yield SlackScenarioDriver(rig)
    finally:
        await fake.close()
