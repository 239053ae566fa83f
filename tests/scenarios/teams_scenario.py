"""The Teams Driver: activities posted to ``/api/messages`` with Bot Connector tokens, cards
read back from the fake Bot Framework.

What a person sees is what pimbot sent to their personal chat (as updated since), where the
answer to an ``Action.Execute`` press replaced a card for them until pimbot updated it again.
A card with inputs is a form (Teams' equivalent of a Slack modal): ``submit`` fills it in
and presses its button; it is not counted among the cards shown.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from scenario_driver import ALICE, BOB, CAROL, LEAD, SeenCard

from pimbot.store.database import Database

TEAMS_TESTS = str(Path(__file__).resolve().parents[1] / "teams")
if TEAMS_TESTS not in sys.path:
    sys.path.insert(0, TEAMS_TESTS)

from fake_connector import FakeBotFramework  # noqa: E402
from teams_driver import Person  # noqa: E402
from teams_rig import Rig, answers, buttons, card_text, questions, running  # noqa: E402

PEOPLE = {email: Person(f"29:{email.split('@')[0]}", email, email.split("@")[0].title())
          for email in (BOB, ALICE, CAROL, LEAD)}


@dataclass
class Override:
    at: int  # index in the fake's calls when the press was answered
    card: dict[str, Any]


class TeamsScenarioDriver:
    name = "teams"

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.provider = rig.provider
        self.clock = rig.clock
        self.overrides: dict[tuple[str, str], Override] = {}  # (email, activity) → answer
        self.forms: dict[str, tuple[str, dict[str, Any]]] = {}  # email → (activity, card)

    async def say(self, who: str, text: str) -> str:
        person = PEOPLE[who]
        mark = len(self.rig.fake.calls)
        response = await self.rig.driver.post(self.rig.driver.message(person, text))
        assert response.status == 201, await response.text()
        await self.rig.settle()
        self._note_forms(who, mark)
        told = "\n".join(answers(self.rig.fake, person.chat, mark))
        await self._look()
        return told

    async def click(self, who: str, label: str) -> str:
        activity, card = self._shown(who)[-1]
        found = buttons(card)
        assert label in found, f"{who}'s latest card has no {label!r}: {card_text(card)}"
        verb, data = found[label]
        return await self._press(who, verb, data, activity)

    async def asks_first(self, who: str, label: str) -> str:
        _, card = self._shown(who)[-1]
        assert label in buttons(card), f"{who}'s latest card has no {label!r}"
        return questions(card).get(label, "")  # the card it opens: nothing is sent

    async def submit(self, who: str, values: dict[str, str]) -> str:
        assert who in self.forms, f"no form was opened for {who}"
        activity, form = self.forms.pop(who)
        given = {str(e["id"]): str(e.get("value", "")) for e in form["body"]
                 if str(e.get("type", "")).startswith("Input.")}
        ((verb, data),) = buttons(form).values()
        return await self._press(who, verb, {**given, **values, **data}, activity)

    def cards_for(self, who: str) -> list[SeenCard]:
        return [seen(card) for _, card in self._shown(who)]

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.rig.settle()
        await self._look()

    async def _look(self) -> None:
        """Everyone looks at their chat, as a Teams client would: each card whose refresh
        lists them (an approval card: its buttons are for the deciders) is replaced, for
        them, by the card pimbot answers the automatic refresh invoke with."""
        for who, person in PEOPLE.items():
            for (conversation, activity), message in list(self.rig.fake.activities.items()):
                if conversation != person.chat:
                    continue
                for attachment in message.get("attachments") or []:
                    card = attachment["content"]
                    refresh = card.get("refresh") or {}
                    if not (refresh.get("action") or {}).get("data"):
                        continue  # only decider cards are drawn per reader
                    if (who, activity) in self.overrides and self.overrides[
                            (who, activity)].at > self._last_write(conversation, activity):
                        continue  # already shown as pimbot drew it for them
                    mine = await self.rig.seen_by(person, activity, card)
                    if mine is not card:
                        self.overrides[(who, activity)] = Override(len(self.rig.fake.calls),
                                                                   mine)
    async def _press(self, who: str, verb: str, data: dict[str, Any], activity: str) -> str:
        person = PEOPLE[who]
        mark = len(self.rig.fake.calls)
        response = await self.rig.driver.post(
            self.rig.driver.invoke(person, verb, data, activity))
        assert response.status == 200, await response.text()
        answer = await response.json()
        told: list[str] = []
        if answer["type"] == "application/vnd.microsoft.card.adaptive":
            card = answer["value"]
            if is_form(card):
                self.forms[who] = (activity, card)
            else:
                self.overrides[(who, activity)] = Override(len(self.rig.fake.calls), card)
            told.append(card_text(card))
        else:
            told.append(str(answer["value"]))
        await self.rig.settle()
        self._note_forms(who, mark)
        told += answers(self.rig.fake, person.chat, mark)
        await self._look()
        return "\n".join(told)

    def _note_forms(self, who: str, mark: int) -> None:
        """A form pimbot posted into the chat (the activation form) is the one to submit."""
        chat = PEOPLE[who].chat
        for call in self.rig.fake.calls[mark:]:
            if call.method == "POST" and f"/conversations/{chat}/activities" in call.path:
                for attachment in call.body.get("attachments") or []:
                    if is_form(attachment["content"]):
                        self.forms[who] = (str(call.answer.get("id", "")), attachment["content"])

    def _shown(self, who: str) -> list[tuple[str, dict[str, Any]]]:
        """(activity id, card) of each card in the person's chat as they see it now."""
        chat = PEOPLE[who].chat
        shown: list[tuple[str, dict[str, Any]]] = []
        for (conversation, activity), message in self.rig.fake.activities.items():
            if conversation != chat:
                continue
            for attachment in message.get("attachments") or []:
                card = attachment["content"]
                override = self.overrides.get((who, activity))
                if override is not None and override.at > self._last_write(chat, activity):
                    card = override.card
                if not is_form(card):
                    shown.append((activity, card))
        return shown

    def _last_write(self, chat: str, activity: str) -> int:
        last = -1
        for index, call in enumerate(self.rig.fake.calls):
            updated = call.method == "PUT" and call.path.endswith(f"/{chat}/activities/{activity}")
            posted = call.method == "POST" and str(call.answer.get("id", "")) == activity
            if updated or posted:
                last = index
        return last


def is_form(card: dict[str, Any]) -> bool:
    return any(str(e.get("type", "")).startswith("Input.") for e in card.get("body") or [])


def seen(card: dict[str, Any]) -> SeenCard:
    text = card_text(card)
    title, _, rest = text.partition("\n")
    return SeenCard(title, rest, tuple(buttons(card)))


@asynccontextmanager
async def teams_driver(db: Database, policy_text: str) -> AsyncIterator[TeamsScenarioDriver]:
    fake = FakeBotFramework([p.member for p in PEOPLE.values()])
    await fake.start()
    try:
        async with running(db, fake, policy_text) as rig:
            await rig.introduce(*PEOPLE.values())
            yield TeamsScenarioDriver(rig)
    finally:
        await fake.close()
