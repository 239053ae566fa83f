"""Commands in personal chat and in channels, people learned from activities, replies."""

from __future__ import annotations

import pytest
from fake_connector import FakeBotFramework, Member
from policies import POLICY
from sqlalchemy import select
from teams_driver import ALICE, BOB, CHANNEL, GUEST, LEAD, TEAM, Person
from teams_rig import answers, refusals, running

from pimbot.ports import Unreachable
from pimbot.store.database import Database
from pimbot.store.tables import PlatformIdentityRow, TeamsConversationRow
from pimbot.ui.cards import Card
from pimbot_teams.gateway import ANSWERED_PRIVATELY, NOT_ANSWERED_PRIVATELY


async def identity(db: Database, who: Person) -> PlatformIdentityRow | None:
    async with db.read() as session:
        return await session.get(PlatformIdentityRow, ("teams", who.user_id))


async def test_a_personal_message_is_a_command_answered_in_the_chat(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        told = await rig.say(BOB, "pim roles")
        assert any("prod-db-admin" in t for t in told), told
        reply = fake_teams.sent(BOB.chat)[-1]
        assert reply.authorization.startswith("Bearer bot-token-"), "replies carry pimbot's token"
        assert reply.path.endswith(f"/activities/{reply.body['replyToId']}"), "a reply"
        lookups = [c for c in fake_teams.calls if "/members/" in c.path]
        assert len(lookups) == 1 and lookups[0].path.endswith(f"/members/{BOB.user_id}")
        known = await identity(db, BOB)
        assert known is not None and known.email == BOB.email
        assert known.conversation_ref is not None
        assert known.conversation_ref["conversation"]["id"] == BOB.chat
        assert known.conversation_ref["serviceUrl"] == fake_teams.service_url
        assert known.conversation_ref["conversation"]["tenantId"]

        await rig.say(BOB, "status")  # the prefix is optional; the email is not looked up again
        assert len([c for c in fake_teams.calls if "/members/" in c.path]) == 1


async def test_an_unknown_word_gets_a_one_line_error_with_a_pim_hint(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        told = await rig.say(BOB, "pim activat prod-db-admin")
        assert len(told) == 1 and "\n" not in told[0].strip(), told
        assert "try: pim " in told[0] or "pim" in told[0], told


async def test_a_channel_mention_is_answered_in_a_personal_chat_and_the_channel_is_learned(
        db: Database, fake_teams: FakeBotFramework) -> None:
    """Everyone in a channel reads its threads, and Teams has no message for one reader (as
    Slack's ephemeral ones are): the answer goes to the person's personal chat, opened for
    it, and the thread hears only that pimbot answered there."""
    async with running(db, fake_teams, POLICY) as rig:
        activity = rig.driver.mention(ALICE, "pim roles")
        response = await rig.driver.post(activity)
        assert response.status == 201
        await rig.settle()
        thread = activity["conversation"]["id"]
        assert answers(fake_teams, thread, 0) == [ANSWERED_PRIVATELY]
        posted = fake_teams.sent(thread)[-1]
        assert posted.path.endswith(f"/activities/{activity['id']}"), "a reply in the thread"
        chat = "a:created-" + ALICE.user_id
        told = answers(fake_teams, chat, 0)
        assert any("prod-db-admin" in t for t in told), told
        assert "<at>" not in str(fake_teams.sent(chat)[-1].body)
        known = await identity(db, ALICE)
        assert known is not None and known.email == ALICE.email
        assert known.conversation_ref is not None
        assert known.conversation_ref["conversation"]["id"] == chat, \
            "the chat opened for the answer is the one pimbot messages her in from now on"
        assert known.conversation_ref["user"]["id"] == ALICE.user_id
        async with db.read() as session:
            places = list((await session.execute(select(TeamsConversationRow))).scalars())
        assert {p.conversation_id for p in places} == {CHANNEL}
        assert places[0].service_url == fake_teams.service_url


async def test_an_auditors_channel_question_never_shows_the_audit_log_to_the_channel(
        db: Database, fake_teams: FakeBotFramework) -> None:
    """The attack: an auditor (or admin) asks in a busy channel; on a thread every member
    reads, the answer would be the audit log, reasons and all, or who holds a role."""
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, LEAD)
        await rig.say(BOB, "activate staging-deploy for 1h reason secret-rotation-INC-77")
        await rig.settle()
        mark = len(fake_teams.calls)
        threads = []
        for question in ("pim audit", "pim whois staging-deploy", "pim pending", "pim status"):
            activity = rig.driver.mention(LEAD, question)
            threads.append(activity["conversation"]["id"])
            assert (await rig.driver.post(activity)).status == 201
        await rig.settle()
        for thread in threads:
            assert answers(fake_teams, thread, mark) == [ANSWERED_PRIVATELY]
        private = " ".join(answers(fake_teams, LEAD.chat, mark))
        assert "secret-rotation-INC-77" in private and BOB.email in private, private


async def test_a_channel_answer_that_cannot_reach_a_personal_chat_is_not_given_there(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        fake_teams.fail("POST /teams/v3/conversations", 403)  # not installed for her
        activity = rig.driver.mention(ALICE, "pim roles")
        assert (await rig.driver.post(activity)).status == 201
        await rig.settle()
        told = answers(fake_teams, activity["conversation"]["id"], 0)
        assert told == [NOT_ANSWERED_PRIVATELY], told
        assert not any("prod-db-admin" in t for t in told)


async def test_installation_and_bot_added_events_store_the_reference(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        response = await rig.driver.post(rig.driver.installed(ALICE))
        assert response.status == 201
        response = await rig.driver.post(rig.driver.bot_added(BOB))
        assert response.status == 201
        response = await rig.driver.post(rig.driver.team_added(BOB))
        assert response.status == 201
        await rig.settle()
        for who in (ALICE, BOB):
            known = await identity(db, who)
            assert known is not None and known.email == who.email
            assert known.conversation_ref is not None
            assert known.conversation_ref["conversation"]["id"] == who.chat
        async with db.read() as session:
            team = await session.get(TeamsConversationRow, TEAM)
        assert team is not None and team.kind == "team" and team.name == "Cloud Platform"


async def test_an_activity_delivered_twice_is_done_once(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        activity = rig.driver.message(BOB, "activate staging-deploy for 1h")
        for _ in range(2):
            response = await rig.driver.post(activity)
            assert response.status == 201
        await rig.settle()
        assert len(await rig.requests()) == 1
        replies = [c for c in fake_teams.sent(BOB.chat) if c.body.get("replyToId")]
        assert len(replies) == 1, "one answer"


async def test_someone_seen_only_in_a_channel_gets_a_chat_opened(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.driver.post(rig.driver.mention(ALICE, "pim status"))
        await rig.settle()
        sent = await rig.adapter.gateway.send_to_user(ALICE.email, Card(title="Hello"))
        (create,) = [c for c in fake_teams.calls if c.path == "/teams/v3/conversations"]
        assert create.body["members"] == [{"id": ALICE.user_id}]
        assert create.body["isGroup"] is False and create.body["tenantId"]
        assert sent.ref["conversation"] == "a:created-" + ALICE.user_id
        known = await identity(db, ALICE)
        assert known is not None and known.conversation_ref is not None
        assert known.conversation_ref["conversation"]["id"] == sent.ref["conversation"]
        await rig.adapter.gateway.send_to_user(ALICE.email, Card(title="Again"))
        assert len([c for c in fake_teams.calls if c.path == "/teams/v3/conversations"]) == 1

        await rig.driver.post(rig.driver.mention(ALICE, "pim status"))
        await rig.settle()
        known = await identity(db, ALICE)
        assert known is not None and known.conversation_ref is not None
        assert known.conversation_ref["conversation"]["id"] == sent.ref["conversation"], \
            "a channel message never replaces a personal chat's reference"


async def test_a_chat_teams_will_not_open_is_unreachable(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        fake_teams.fail("POST /teams/v3/conversations", 403)
        await rig.driver.post(rig.driver.mention(ALICE, "pim status"))  # answer: no chat
        await rig.settle()
        fake_teams.fail("POST /teams/v3/conversations", 403)
        with pytest.raises(Unreachable):
            await rig.adapter.gateway.send_to_user(ALICE.email, Card(title="Hello"))


OUTSIDER = Person("29:outsider", "eve@other.example", "Eve Outsider")


async def test_guests_and_people_of_other_tenants_are_refused_and_audited(
        db: Database, fake_teams: FakeBotFramework) -> None:
    fake_teams.members[GUEST.user_id] = Member(GUEST.user_id, GUEST.email, GUEST.name,
                                               role="guest")
    fake_teams.members[OUTSIDER.user_id] = Member(OUTSIDER.user_id, OUTSIDER.email,
                                                  OUTSIDER.name, tenant="another-tenant")
    async with running(db, fake_teams, POLICY) as rig:
        guest = await rig.say(GUEST, "roles")
        assert any("Guest accounts cannot use pimbot" in t for t in guest), guest
        outsider = await rig.say(OUTSIDER, "roles")
        assert any("only from people of its own organisation" in t for t in outsider)
        assert sorted(await refusals(db)) == ["external_refused", "guest_refused"]
        assert await identity(db, GUEST) is None and await identity(db, OUTSIDER) is None


async def test_guests_may_be_let_in_by_the_policy(db: Database,
                                                  fake_teams: FakeBotFramework) -> None:
    fake_teams.members[GUEST.user_id] = Member(GUEST.user_id, GUEST.email, GUEST.name,
                                               role="guest")
    async with running(db, fake_teams, POLICY + "teams: {allow_guests: true}\n") as rig:
        told = await rig.say(GUEST, "roles")
        assert not any("Guest accounts" in t for t in told), told
        assert await identity(db, GUEST) is not None
