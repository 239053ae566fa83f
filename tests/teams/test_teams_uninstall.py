"""Uninstall: pimbot removed from a personal scope (``installationUpdate`` ``remove``, or the
chat's ``conversationUpdate`` with pimbot in ``membersRemoved``) or from a team stops sending
there; the person is reported unreachable, as someone who never installed it, until they
install it again, which stores the reference again."""

from __future__ import annotations

from typing import Any

import pytest
from fake_connector import FakeBotFramework
from policies import POLICY
from sqlalchemy import select
from teams_driver import ALICE, BOB, CAROL, CHANNEL
from teams_rig import Rig, card_text, running

from pimbot.store.database import Database
from pimbot.store.tables import JobRow

ACTIVATE = "pim activate prod-db-admin for 1h reason restore backup"
UNREACHABLE = "pimbot could not reach carol@example.com"


def told_bob(rig: Rig, mark: int) -> str:
    return " ".join(card_text(a["content"]) for c in rig.fake.calls[mark:]
                    if c.method == "POST" and f"/conversations/{BOB.chat}/activities" in c.path
                    for a in c.body.get("attachments") or [])


def posts_to(rig: Rig, chat: str, mark: int) -> list[Any]:
    return [c for c in rig.fake.calls[mark:] if chat in c.path]


def channel_posts(rig: Rig, mark: int) -> list[Any]:
    return [c for c in rig.fake.calls[mark:] if c.method == "POST"
            and c.path.endswith("/v3/conversations") and CHANNEL in str(c.body)]


async def ask_again(rig: Rig) -> int:
    """Bob cancels what he asked and asks again; the fake's call index before he asked."""
    for request in await rig.requests():
        if request.state == "pending_approval":
            await rig.say(BOB, f"pim cancel {request.id}")
    mark = len(rig.fake.calls)
    await rig.say(BOB, ACTIVATE)
    return mark


@pytest.mark.parametrize("event", ["uninstalled", "bot_removed"])
async def test_an_uninstalled_approver_is_reported_until_they_reinstall(
        db: Database, fake_teams: FakeBotFramework, event: str) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        gone = getattr(rig.driver, event)(CAROL)
        assert (await rig.driver.post(gone)).status == 201
        await rig.settle()
        known = await rig.core.identity("teams", CAROL.user_id)
        assert known is not None and known.email == CAROL.email, "still known by email"
        assert known.conversation_ref is None, "the reference is forgotten"

        mark = len(fake_teams.calls)
        await rig.say(BOB, ACTIVATE)
        assert posts_to(rig, CAROL.chat, mark) == [], "nothing is sent to carol"
        assert UNREACHABLE in told_bob(rig, mark), "reported like someone never installed"
        assert rig.latest_card(ALICE), "alice still gets hers"

        assert (await rig.driver.post(rig.driver.installed(CAROL))).status == 201
        await rig.settle()
        mark = await ask_again(rig)
        assert posts_to(rig, CAROL.chat, mark), \
            "reinstalled: the reference is stored again and carol gets the card"
        assert UNREACHABLE not in told_bob(rig, mark)


async def test_an_old_uninstall_does_not_forget_a_newer_chat(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(CAROL)
        stale = rig.driver.uninstalled(CAROL)
        stale["conversation"]["id"] = "a:an-older-chat"
        assert (await rig.driver.post(stale)).status == 201
        await rig.settle()
        known = await rig.core.identity("teams", CAROL.user_id)
        assert known is not None and known.conversation_ref is not None
        assert await rig.adapter.gateway.can_reach(CAROL.email)


async def test_pimbot_removed_from_a_team_stops_posting_to_its_channels(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        assert (await rig.driver.post(rig.driver.team_added(ALICE))).status == 201
        await rig.introduce(BOB, ALICE, CAROL)
        assert (await rig.driver.post(rig.driver.mention(ALICE, "pim roles"))).status == 201
        await rig.settle()
        mark = len(fake_teams.calls)
        await rig.say(BOB, ACTIVATE)
        assert channel_posts(rig, mark), "while in the team, the channel gets the card"

        assert (await rig.driver.post(rig.driver.team_removed(ALICE))).status == 201
        await rig.settle()
        mark = await ask_again(rig)
        assert channel_posts(rig, mark) == [], "removed: nothing is posted to its channels"
        async with db.read() as session:
            retrying = (await session.scalars(select(JobRow.kind).where(
                JobRow.status == "queued", JobRow.attempts > 0))).all()
        assert retrying == [], "a channel pimbot was removed from is not retried for hours"
        assert rig.latest_card(CAROL), "the approvers' own chats still get theirs"

        assert (await rig.driver.post(rig.driver.team_added(ALICE))).status == 201
        await rig.settle()
        mark = await ask_again(rig)
        assert channel_posts(rig, mark), "added back: the channel gets cards again"


