"""Where a Teams sender stands when the Bot Connector's member lookup cannot vouch for them.

The lookup says member, guest or someone of another tenant, and the core admits by it. When
the lookup cannot be made, what pimbot stored at the last lookup that succeeded stands in,
standing and all; when Teams answers that the sender is no member of the conversation, or
the stored row has no standing, nothing stands in and the core refuses (audited). Each test
runs pimbot twice on one database, as a restart would: nothing is cached between them.
"""

from __future__ import annotations

from fake_connector import FakeBotFramework, Member
from policies import POLICY
from sqlalchemy import update
from teams_driver import BOB, GUEST, Person
from teams_rig import refusals, running

from pimbot.store.database import Database
from pimbot.store.tables import PlatformIdentityRow

UNCONFIRMED = "could not confirm your account"
LOOKUP_DOWN = 5  # at least the connector's attempts at one lookup (it retries some statuses)


async def standing(db: Database, who: Person) -> str | None:
    async with db.read() as session:
        row = await session.get(PlatformIdentityRow, ("teams", who.user_id))
        assert row is not None, "pimbot stored the person at their first message"
        return row.standing


async def test_a_guest_let_in_once_stays_a_guest_while_the_lookup_cannot_be_made(
        db: Database, fake_teams: FakeBotFramework) -> None:
    fake_teams.members[GUEST.user_id] = Member(GUEST.user_id, GUEST.email, GUEST.name,
                                               role="guest")
    async with running(db, fake_teams, POLICY + "teams: {allow_guests: true}\n") as rig:
        told = await rig.say(GUEST, "roles")
        assert not any("Guest accounts" in t for t in told), told
    assert await standing(db, GUEST) == "guest"

    async with running(db, fake_teams, POLICY) as rig:  # the policy no longer lets guests in
        fake_teams.fail(f"members/{GUEST.user_id}", 503, times=LOOKUP_DOWN)
        told = await rig.say(GUEST, "roles")
        assert any("Guest accounts cannot use pimbot" in t for t in told), told
        assert not any("prod-db-admin" in t for t in told), told
    assert await refusals(db) == ["guest_refused"]


async def test_a_member_stays_in_while_the_lookup_cannot_be_made(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.say(BOB, "roles")
    assert await standing(db, BOB) == "member"
    async with running(db, fake_teams, POLICY) as rig:
        fake_teams.fail(f"members/{BOB.user_id}", 503, times=LOOKUP_DOWN)
        told = await rig.say(BOB, "roles")
        assert any("prod-db-admin" in t for t in told), told
    assert await refusals(db) == []


async def test_someone_teams_says_is_no_member_here_is_refused_whatever_was_stored(
        db: Database, fake_teams: FakeBotFramework) -> None:
    """Teams answers 404 (``MemberNotFoundInConversation``): the stored row of when they
    were a member does not let them in."""
    async with running(db, fake_teams, POLICY) as rig:
        await rig.say(BOB, "roles")
    del fake_teams.members[BOB.user_id]
    async with running(db, fake_teams, POLICY) as rig:
        told = await rig.say(BOB, "roles")
        assert len(told) == 1 and UNCONFIRMED in told[0], told
        assert "Nothing was changed" in told[0] or "nothing was changed" in told[0], told
    assert await refusals(db) == ["unconfirmed_refused"]


async def test_a_row_stored_without_a_standing_lets_no_one_in_until_a_lookup_succeeds(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.say(BOB, "roles")
    async with db.transaction() as session:  # as rows stored before migration 0021 are
        await session.execute(update(PlatformIdentityRow).values(standing=None))
    async with running(db, fake_teams, POLICY) as rig:
        fake_teams.fail(f"members/{BOB.user_id}", 503, times=LOOKUP_DOWN)
        told = await rig.say(BOB, "roles")
        assert len(told) == 1 and UNCONFIRMED in told[0], told
        assert await refusals(db) == ["unconfirmed_refused"]

        fake_teams.faults.clear()
        told = await rig.say(BOB, "roles")  # Teams answers again
        assert any("prod-db-admin" in t for t in told), told
    assert await standing(db, BOB) == "member"
