"""A running pimbot with the Teams adapter: real PimCore, real database, real aiohttp route.

Only Microsoft is faked (``fake_connector.FakeBotFramework``, at the HTTP level: the Bot
Connector, the token endpoint, the OpenID metadata and keys); the provider is a
RecordingProvider, time is a FakeClock, and MFA runs on a real ``MfaService``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from adaptive_schema import assert_valid_card
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_connector import FakeBotFramework
from sqlalchemy import select
from teams_driver import PEOPLE, Person, TeamsDriver

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_teams.app import TeamsAdapter
from totp_codes import wrong_code

KEY = re.compile(r"Key: ([A-Z2-7]{16,})")
DATE_OR_TIME = re.compile(r"\{\{(?:DATE|TIME)\(([^,)]*)[^}]*\}\}")


@dataclass
class Rig:
    core: PimCore
    adapter: TeamsAdapter
    provider: RecordingProvider
    fake: FakeBotFramework
    driver: TeamsDriver
    db: Database
    clock: FakeClock

    async def settle(self) -> None:
        """Let answered activities finish, then run the jobs they enqueued (cards, grants)."""
        for _ in range(5):
            await self.adapter.idle()
            await self.core.drain()
        self.check_cards()

    def check_cards(self) -> None:
        """Every Adaptive Card pimbot has sent so far is valid for the schema."""
        for call in self.fake.calls:
            body = call.body if isinstance(call.body, dict) else {}
            activity = body.get("activity", body)
            for attachment in activity.get("attachments") or []:
                if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                    assert_valid_card(attachment["content"])

    async def say(self, who: Person, text: str) -> list[str]:
        """A personal-chat message; the texts and card titles pimbot answered with."""
        mark = len(self.fake.calls)
        response = await self.driver.post(self.driver.message(who, text))
        assert response.status == 201, await response.text()
        await self.settle()
        return answers(self.fake, who.chat, mark)

    async def introduce(self, *people: Person) -> None:
        """Each person installs pimbot in personal scope."""
        for who in people or PEOPLE:
            response = await self.driver.post(self.driver.installed(who))
            assert response.status == 201
        await self.settle()

    async def press(self, who: Person, verb: str, data: dict[str, Any],
                    card_activity: str, conversation: str | None = None) -> dict[str, Any]:
        """An Action.Execute invoke; the invoke response body (HTTP 200 checked)."""
        response = await self.driver.post(
            self.driver.invoke(who, verb, data, card_activity, conversation))
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        if answer.get("type") == "application/vnd.microsoft.card.adaptive":
            assert_valid_card(answer["value"])
        await self.settle()
        return answer

    def latest_card(self, who: Person) -> tuple[str, dict[str, Any]]:
        """(activity id, card) of the newest card in the person's chat, as it is now."""
        found = [(aid, card) for (conv, aid), activity in self.fake.activities.items()
                 if conv == who.chat for card in _cards(activity)]
        assert found, f"no card in {who.email}'s chat"
        return found[-1]

    async def seen_by(self, who: Person, card_activity: str, card: dict[str, Any],
                      conversation: str | None = None) -> dict[str, Any]:
        """The card as ``who`` sees it, the way a Teams client does: a card whose
        ``refresh.userIds`` lists them is replaced by the answer to the automatic refresh
        invoke; anyone else sees the card as sent."""
        refresh = card.get("refresh") or {}
        if who.user_id not in (refresh.get("userIds") or []):
            return card
        action = refresh["action"]
        response = await self.driver.post(self.driver.invoke(
            who, action["verb"], action.get("data") or {}, card_activity, conversation,
            trigger="automatic"))
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
        assert_valid_card(answer["value"])
        return dict(answer["value"])

    async def latest_seen(self, who: Person) -> tuple[str, dict[str, Any]]:
        """``latest_card`` as the person sees it (``seen_by``)."""
        activity, card = self.latest_card(who)
        return activity, await self.seen_by(who, activity, card)

    async def requests(self) -> list[RequestRow]:
        async with self.db.read() as session:
            return list((await session.execute(select(RequestRow))).scalars())

    def code(self, totp: pyotp.TOTP) -> str:
        return str(totp.at(self.clock.now()))

    def wrong_code(self, totp: pyotp.TOTP) -> str:
        return wrong_code(totp, self.clock.now())

    async def enrol(self, who: Person) -> pyotp.TOTP:
        """``pim mfa enroll`` then ``pim mfa confirm`` in the person's personal chat."""
        mark = len(self.fake.calls)
        await self.say(who, "mfa enroll")
        text = " ".join(answers(self.fake, who.chat, mark))
        found = KEY.search(text)
        assert found, text
        totp = pyotp.TOTP(found.group(1))
        told = await self.say(who, f"mfa confirm {self.code(totp)}")
        assert any("confirmed" in t for t in told), told
        self.clock.advance(timedelta(seconds=30))  # the next code is a fresh time step
        return totp


def _cards(activity: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["content"] for a in activity.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"]


def card_text(card: dict[str, Any]) -> str:
    """Every piece of text a person reads on a card (escapes removed)."""
    parts: list[str] = []
    for element in card.get("body") or []:
        if element.get("type") == "TextBlock":
            parts.append(DATE_OR_TIME.sub(lambda m: m.group(1), str(element["text"])))
        elif element.get("type") == "RichTextBlock":
            parts.append("".join(str(run["text"]) for run in element["inlines"]))
        elif element.get("type") == "FactSet":
            parts.extend(f"{f['title']}: {f['value']}" for f in element["facts"])
        elif str(element.get("type", "")).startswith("Input."):
            parts.append(str(element.get("label", "")))
    return re.sub(r"\\(.)", r"\1", "\n".join(parts)).replace("**", "")


def buttons(card: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """label → (verb, data) of a card's buttons: an Action.Execute, or the Action.Execute
    inside a button that asks first (an Action.ShowCard: pressing it, then going ahead)."""
    found = {}
    for action in card.get("actions") or []:
        if action["type"] == "Action.ShowCard":
            action = {**action["card"]["actions"][0], "title": action["title"]}
        if action["type"] == "Action.Execute":
            found[action["title"]] = (action["verb"], action.get("data") or {})
    return found


def questions(card: dict[str, Any]) -> dict[str, str]:
    """label → the text a button that asks first shows before it acts (Action.ShowCard)."""
    return {action["title"]: card_text(action["card"]) for action in card.get("actions") or []
            if action["type"] == "Action.ShowCard"}


def answers(fake: FakeBotFramework, conversation: str, mark: int) -> list[str]:
    """Texts and card texts pimbot posted to ``conversation`` since call ``mark``."""
    told: list[str] = []
    for call in fake.calls[mark:]:
        if call.method != "POST" or f"/conversations/{conversation}/activities" not in call.path:
            continue
        body = call.body
        if body.get("text"):
            told.append(str(body["text"]))
        told.extend(card_text(card) for card in _cards(body))
    return told


@asynccontextmanager
async def running(db: Database, fake: FakeBotFramework, policy_text: str, *,
                  auth: bool = True, env: dict[str, str] | None = None,
                  core: PimCore | None = None, clock: FakeClock | None = None,
                  provider: RecordingProvider | None = None) -> AsyncIterator[Rig]:
    clock = clock or FakeClock()
    provider = provider or RecordingProvider()
    if core is None:
        policy = parse_policy(policy_text)
        await apply_policy(db, policy, clock)
        mfa = MfaService(db, SecretBox(secrets.token_bytes(32)), clock)
        core = PimCore(db, policy, {"demo": provider}, clock, mfa=mfa)
    settings = fake.env() if auth else {"PIMBOT_TEAMS_DEV_MODE": "1"}
    settings.update(env or {})
    adapter = TeamsAdapter.from_env(settings, core)
    adapter.connector.backoff_base_s = 0.01  # retries without the real backoff's seconds
    app = web.Application()
    adapter.mount(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Rig(core, adapter, provider, fake, TeamsDriver(client, fake, signed=auth), db,
                  clock)
    finally:
        await adapter.stop()
        await client.close()


async def refusals(db: Database) -> list[str]:
    """The reasons of the requests refused at the edge (``inbound.refused``), as audited."""
    async with db.read() as session:
        rows = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "inbound.refused"))).scalars()
        return [str(r.detail.get("reason")) for r in rows]
