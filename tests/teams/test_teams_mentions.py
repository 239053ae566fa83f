"""People named by an @mention in a command: the mention entity's user id is looked up
(the Bot Connector's member lookup, else the identity pimbot stored), never the name shown;
pimbot's own mention is stripped as before."""

from __future__ import annotations

from fake_connector import FakeBotFramework
from policies import POLICY
from sqlalchemy import select
from teams_driver import ALICE, CAROL, LEAD
from teams_rig import Rig, answers, running

from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow

ASSIGN = "pim assign <at>{shown}</at> staging-deploy eligible"


async def eligible(rig: Rig, role: str = "staging-deploy") -> list[str]:
    async with rig.db.read() as session:
        rows = (await session.execute(select(AssignmentRow).where(
            AssignmentRow.role == role, AssignmentRow.removed_at.is_(None)))).scalars()
        return sorted(r.email for r in rows if r.source == "admin")


async def say_mentioning(rig: Rig, user_id: str, shown: str, *, channel: bool = False
                         ) -> str:
    text = ASSIGN.format(shown=shown)
    activity = rig.driver.mention(LEAD, text) if channel else rig.driver.message(LEAD, text)
    rig.driver.mentioning(activity, user_id, shown)
    mark = len(rig.fake.calls)
    response = await rig.driver.post(activity)
    assert response.status == 201
    await rig.settle()
    where = str(activity["conversation"]["id"])  # a channel thread's answer: LEAD's chat
    return " ".join(answers(rig.fake, LEAD.chat if channel else where, mark))


async def test_a_mentioned_person_is_their_email(db: Database,
                                                 fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(LEAD)
        told = await say_mentioning(rig, CAROL.user_id, "Carol Approver")
        assert "carol@example.com" in told, told
        assert await eligible(rig) == [CAROL.email]


async def test_the_name_shown_is_never_who_is_meant(db: Database,
                                                    fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(LEAD, ALICE)
        await say_mentioning(rig, CAROL.user_id, "Alice Approver")  # carol, shown as alice
        assert await eligible(rig) == [CAROL.email], "the mention's id decides, not its name"


async def test_in_a_channel_the_bot_mention_goes_and_the_person_stays(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(LEAD)
        told = await say_mentioning(rig, CAROL.user_id, "Carol Approver", channel=True)
        assert await eligible(rig) == [CAROL.email], told


async def test_the_stored_identity_stands_in_when_the_lookup_fails(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(CAROL)
    async with running(db, fake_teams, POLICY) as rig:  # a new process: nothing cached
        await rig.introduce(LEAD)
        fake_teams.fail(f"members/{CAROL.user_id}", 500)
        await say_mentioning(rig, CAROL.user_id, "Carol Approver")
        assert await eligible(rig) == [CAROL.email]


async def test_a_mention_nobody_can_place_changes_nothing(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(LEAD)
        told = await say_mentioning(rig, "29:a-stranger", "Carol Approver")
        assert await eligible(rig) == []
        assert "never picks someone by" in told and "Nothing was changed" in told, told
