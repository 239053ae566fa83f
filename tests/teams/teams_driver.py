"""What Teams would post to ``/api/messages``: the shapes of ../shared/fixtures, for a given
person and conversation, with a Bot Connector token minted by the fake Bot Framework."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from fake_connector import APP_ID, TENANT, FakeBotFramework, Member

from fixture_paths import FIXTURES

BOT_ID = f"28:{APP_ID}"
CHANNEL = "19:6848757105754c8981c67612732d9aa7@thread.tacv2"
TEAM = "19:Kq3VbN8mXc1ZaS2dF4gH6jK8lP0oI9uY7tR5eW3qA1@thread.tacv2"


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str
    name: str

    @property
    def chat(self) -> str:
        """The id of this person's personal chat with pimbot."""
        return "a:chat-" + self.user_id.removeprefix("29:")

    @property
    def member(self) -> Member:
        return Member(self.user_id, self.email, self.name)


BOB = Person("29:bob-requester", "bob@example.com", "Bob Requester")
ALICE = Person("29:alice-approver", "alice@example.com", "Alice Approver")
CAROL = Person("29:carol-approver", "carol@example.com", "Carol Approver")
LEAD = Person("29:sec-lead", "sec-lead@example.com", "Sec Lead")
PEOPLE = (BOB, ALICE, CAROL, LEAD)
# not in the fake directory unless a test adds them (as a guest account)
GUEST = Person("29:guest-user", "guest@partner.example", "Guest User")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


_ACTIVITY_IDS = itertools.count(1)


class TeamsDriver:
    def __init__(self, client: TestClient[Any, Any], fake: FakeBotFramework, *,
                 signed: bool = True) -> None:
        self.client = client
        self.fake = fake
        self.signed = signed
        self._ids = _ACTIVITY_IDS  # shared: a second pimbot on one database is no replay

    def _as(self, activity: dict[str, Any], who: Person, conversation: str | None = None,
            ) -> dict[str, Any]:
        activity = copy.deepcopy(activity)
        activity["serviceUrl"] = self.fake.service_url
        activity["from"] = {"id": who.user_id, "name": who.name, "aadObjectId": "aad-" + who.name}
        activity["recipient"] = {"id": BOT_ID, "name": "PIM Bot"}
        activity.setdefault("conversation", {})["id"] = conversation or who.chat
        activity["conversation"]["tenantId"] = TENANT
        activity.setdefault("channelData", {})["tenant"] = {"id": TENANT}
        activity["id"] = f"f:{next(self._ids)}"
        return activity

    def message(self, who: Person, text: str) -> dict[str, Any]:
        activity = self._as(fixture("teams_message.json"), who)
        activity["text"] = text
        activity["attachments"] = [{"contentType": "text/html", "content": f"<p>{text}</p>"}]
        return activity

    def mention(self, who: Person, text: str) -> dict[str, Any]:
        """A new post in the team channel that @mentions pimbot."""
        activity = self._as(fixture("teams_channel_mention.json"), who,
                            f"{CHANNEL};messageid=17672257{next(self._ids):05d}")
        activity["text"] = f"<at>PIM Bot</at> {text}"
        activity["entities"][0]["mentioned"] = {"id": BOT_ID, "name": "PIM Bot"}
        return activity

    @staticmethod
    def mentioning(activity: dict[str, Any], user_id: str, shown: str) -> dict[str, Any]:
        """Add a person's mention entity (``<at>shown</at>`` in the text) to an activity."""
        activity.setdefault("entities", []).append(
            {"type": "mention", "text": f"<at>{shown}</at>",
             "mentioned": {"id": user_id, "name": shown}})
        return activity

    def installed(self, who: Person) -> dict[str, Any]:
        return self._as(fixture("teams_installation_update.json"), who)

    def uninstalled(self, who: Person) -> dict[str, Any]:
        """The person removes pimbot from their personal scope."""
        activity = self.installed(who)
        activity["action"] = "remove"
        return activity

    def bot_removed(self, who: Person) -> dict[str, Any]:
        """The personal chat's ``conversationUpdate`` when pimbot is removed from it."""
        activity = self._as(fixture("teams_conversation_update.json"), who)
        activity.pop("membersAdded", None)
        activity["membersRemoved"] = [{"id": BOT_ID}]
        return activity

    def team_removed(self, who: Person) -> dict[str, Any]:
        """``who`` removes pimbot from the team."""
        activity = self._as(fixture("teams_conversation_update_team.json"), who, TEAM)
        activity.pop("membersAdded", None)
        activity["membersRemoved"] = [{"id": BOT_ID}]
        activity["channelData"]["eventType"] = "teamMemberRemoved"
        return activity

    def bot_added(self, who: Person) -> dict[str, Any]:
        activity = self._as(fixture("teams_conversation_update.json"), who)
        activity["membersAdded"] = [{"id": BOT_ID}]
        return activity

    def team_added(self, who: Person) -> dict[str, Any]:
        activity = self._as(fixture("teams_conversation_update_team.json"), who, TEAM)
        activity["membersAdded"] = [{"id": BOT_ID}]
        return activity

    def invoke(self, who: Person, verb: str, data: dict[str, Any], card_activity: str,
               conversation: str | None = None, *, trigger: str = "manual") -> dict[str, Any]:
        """An ``adaptiveCard/action`` invoke: a press (``manual``) or, ``automatic``, the
        refresh a Teams client sends for someone in a card's ``refresh.userIds``."""
        activity = self._as(fixture("teams_invoke_adaptive_card_action.json"), who, conversation)
        activity["value"]["action"] = {"type": "Action.Execute", "title": verb, "verb": verb,
                                       "data": data}
        activity["value"]["trigger"] = trigger
        activity["replyToId"] = card_activity
        return activity

    def submit(self, who: Person, data: dict[str, Any], card_activity: str) -> dict[str, Any]:
        activity = self._as(fixture("teams_action_submit.json"), who)
        activity["value"] = data
        activity["replyToId"] = card_activity
        return activity

    async def post(self, activity: dict[str, Any], token: str | None = None, *,
                   headers: dict[str, str] | None = None) -> ClientResponse:
        sent = {"Content-Type": "application/json; charset=utf-8"}
        if token is None and self.signed:
            token = self.fake.mint(service_url=str(activity["serviceUrl"]))
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        return await self.client.post("/api/messages", data=json.dumps(activity), headers=sent)
