"""Access reviews in chat: campaigns, prompts, answers, reminders, close, break-glass
follow-ups and what a review removal means for the policy file."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy, format_plan, plan_policy
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, AuditEventRow, ReviewCampaignRow, ReviewItemRow
from pimbot.ui.cards import ActionId, Card, UserText
from pimbot.workflow.usecases import review_campaigns

from .harness import POLICY, Pim, make_pim, request_id_of

BOB, ALICE, CAROL, ADMIN = ("bob@example.com", "alice@example.com", "carol@example.com",
                            "sec-lead@example.com")

SCHEDULED = POLICY + """reviews:
  - {name: quarterly, roles: [prod-db-admin], every: 90d, duration: 14d,
     reviewers: approvers, if_no_response: remove}
"""


async def _items(db: Database, email: str | None = None) -> list[ReviewItemRow]:
    async with db.read() as session:
        query = select(ReviewItemRow).order_by(ReviewItemRow.created_at, ReviewItemRow.id)
        if email is not None:
            query = query.where(ReviewItemRow.email == email)
        return list((await session.scalars(query)).all())


def _item_of(card: Card) -> str:
    return card.context.split()[-1]


def _prompts(pim: Pim, email: str) -> list[Card]:
    return [c for c in pim.cards_to(f"user:{email}") if c.context.startswith("Review item")]


async def _events(db: Database, action: str) -> list[AuditEventRow]:
    async with db.read() as session:
        return list((await session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == action).order_by(AuditEventRow.seq))).all())


async def test_only_admins_start_a_review_and_reviewers_are_asked(db: Database) -> None:
    pim = await make_pim(db)
    refused = await pim.say(BOB, "review start prod-db-admin")
    assert not refused.ok and "Only admins" in refused.text
    reply = await pim.say(ADMIN, "review start prod-db-admin for 7d")
    assert reply.ok and "2 item(s)" in reply.text, reply.text
    items = {i.email: i for i in await _items(db)}
    assert set(items) == {BOB, ALICE}
    assert items[BOB].reviewers == [ALICE, CAROL]
    assert items[ALICE].reviewers == [CAROL], "nobody reviews their own access"
    assert {_item_of(c) for c in _prompts(pim, CAROL)} == {items[BOB].id, items[ALICE].id}
    assert [_item_of(c) for c in _prompts(pim, ALICE)] == [items[BOB].id]
    card = _prompts(pim, CAROL)[0]
    labels = [f.label for f in card.fields]
    for label in ("Person", "Role", "Assignment", "Since", "Last activation",
                  "Activations (90 days)", "Recommendation"):
        assert label in labels
    assert [b.label for b in card.actions] == ["Keep", "Remove"]
    channel = [c for c in pim.cards_to("channel:slack:#sec-alerts") if "started" in c.title]
    assert len(channel) == 1


async def test_remove_ends_the_assignment_and_revokes_active_access(db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 2h reason fix"))
    await pim.click(ALICE, ActionId.APPROVE, rid)
    assert len(pim.provider.actions("grant")) == 1
    await pim.say(ADMIN, "review start prod-db-admin for 7d")
    bob_item = (await _items(db, BOB))[0].id
    outsider = await pim.click(BOB, ActionId.REVIEW_KEEP, bob_item)
    assert not outsider.ok and "not a reviewer" in outsider.text
    asked = await pim.click(CAROL, ActionId.REVIEW_REMOVE, bob_item)
    assert asked.form is not None and asked.form.submit is ActionId.SUBMIT_REVIEW_REMOVE
    no_reason = await pim.say(CAROL, f"review remove {bob_item}")
    assert not no_reason.ok and "reason" in no_reason.text
    done = await pim.click(CAROL, ActionId.SUBMIT_REVIEW_REMOVE, bob_item,
                           {"reason": "moved to another team"})
    assert done.ok, done.text
    again = await pim.say(ALICE, f"review keep {bob_item}")
    assert not again.ok and "already answered" in again.text
    await pim.say(CAROL, f"review keep {(await _items(db, ALICE))[0].id}")  # all answered
    assert len(pim.provider.actions("revoke")) == 1, "the review removed active access"
    roles = await pim.say(BOB, "roles")
    assert "prod-db-admin" not in roles.text, roles.text
    told = [c for c in pim.cards_to(f"user:{BOB}") if "was removed" in c.title]
    assert told and [(f.label, f.value) for f in told[0].fields] == [
        (f"Reason from {CAROL}", UserText("moved to another team"))]
    async with db.read() as session:
        campaign = (await session.scalars(select(ReviewCampaignRow))).one()
    assert campaign.state == "closed", "closed once every item was answered"
    assert [e.detail["decision"] for e in await _events(db, "review.decided")] == [
        "remove", "keep"]
    assert pim.provider.unmatched() == {}


async def test_unanswered_items_follow_if_no_response_with_reminders_on_time(
        db: Database) -> None:
    pim = await make_pim(db, SCHEDULED)
    await review_campaigns.schedule_next_starts(pim.core.ctx)
    await pim.say(CAROL, "review start prod-db-admin")  # not an admin: nothing starts
    async with db.read() as session:
        start = (await session.scalars(select(ReviewCampaignRow))).all()
    assert start == []
    pim.clock.advance(timedelta(days=90))
    await pim.core.drain()
    [campaign] = await _campaigns(db)
    assert campaign.name == "quarterly"
    lists = len([c for c in pim.cards_to(f"user:{CAROL}") if c.context.startswith("Review")])
    await pim.advance(timedelta(days=6, hours=23))
    assert len(_all_review_cards(pim, CAROL)) == lists, "no reminder before half time"
    await pim.advance(timedelta(hours=1, minutes=1))  # half time
    assert len(_all_review_cards(pim, CAROL)) == lists + 1
    await pim.say(CAROL, f"review keep {(await _items(db, BOB))[0].id}")
    await pim.advance(timedelta(days=6))  # one day before the end
    assert len(_all_review_cards(pim, CAROL)) == lists + 2
    await pim.advance(timedelta(days=1))  # the end
    [closed] = await _campaigns(db)
    assert closed.state == "closed"
    outcomes = {i.email: i.outcome for i in await _items(db)}
    assert outcomes == {BOB: "kept", ALICE: "removed"}, "alice's unanswered item: remove"
    async with db.read() as session:
        alice = (await session.scalars(select(AssignmentRow).where(
            AssignmentRow.email == ALICE, AssignmentRow.role == "prod-db-admin"))).one()
    assert alice.removed_at is not None and alice.removed_by_review == closed.id


def _all_review_cards(pim: Pim, email: str) -> list[Card]:
    return [c for c in pim.cards_to(f"user:{email}") if c.context.startswith("Review")]


async def _campaigns(db: Database) -> list[ReviewCampaignRow]:
    async with db.read() as session:
        return list((await session.scalars(select(ReviewCampaignRow))).all())


async def test_a_scheduled_campaign_starts_once_across_replicas(db: Database) -> None:
    a = await make_pim(db, SCHEDULED)
    b = await make_pim(db, SCHEDULED)
    b.clock.set(a.clock.now())
    await asyncio.gather(review_campaigns.start_scheduled(a.core.ctx, "quarterly"),
                         review_campaigns.start_scheduled(b.core.ctx, "quarterly"))
    assert len(await _campaigns(db)) == 1
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(ReviewItemRow))
    assert count == 2


async def test_accept_recommendations_and_a_recommendation_to_remove(db: Database) -> None:
    pim = await make_pim(db)
    pim.clock.advance(timedelta(days=40))  # nobody activated prod-db-admin for 40 days
    await pim.say(ADMIN, "review start prod-db-admin")
    listing = await pim.say(CAROL, "reviews")
    assert listing.card is not None and "2 access review item(s)" in listing.card.title
    items = await _items(db)
    assert all(i.recommendation == "remove" for i in items), [i.recommendation for i in items]
    assert "never activated" in items[0].recommendation_reason
    accepted = await pim.say(CAROL, "review accept")
    assert accepted.ok and "2 to be removed" in accepted.text, accepted.text
    assert (await pim.say(BOB, "roles")).text.count("prod-db-admin") == 0


async def test_break_glass_opens_a_follow_up_for_the_admins(db: Database) -> None:
    pim = await make_pim(db)
    totp = await pim.enrol(BOB)
    reply = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(totp)} reason outage")
    assert reply.ok, reply.text
    [prompt] = _prompts(pim, ADMIN)
    assert [b.label for b in prompt.actions] == ["Justified", "Not justified"]
    item = _item_of(prompt)
    assert not (await pim.say(BOB, f"review keep {item}")).ok, "not one's own follow-up"
    done = await pim.say(ADMIN, f"review remove {item} reason no incident was open")
    assert done.ok, done.text
    alerts = [c for c in pim.cards_to("channel:slack:#sec-alerts") if "NOT justified" in c.title]
    assert alerts and UserText("no incident was open") in [f.value for f in alerts[0].fields]
    [event] = await _events(db, "review.decided")
    assert event.detail["decision"] == "not justified"


async def test_a_review_removal_of_a_policy_assignment_is_held_until_the_file_changes(
        db: Database) -> None:
    pim = await make_pim(db)
    await pim.say(ADMIN, "review start prod-db-admin")
    for item in await _items(db):
        who = ALICE if item.email == BOB else CAROL
        await pim.say(who, f"review remove {item.id} reason not needed")
    policy = parse_policy(POLICY)
    plan = format_plan(await plan_policy(db, policy))
    assert f"! assignment {BOB} prod-db-admin eligible (removed by access review" in plan, plan
    await apply_policy(db, policy, pim.clock)
    assert "prod-db-admin" not in (await pim.say(BOB, "roles")).text, "not added back"
    dropped = POLICY.replace("  - {user: bob@example.com, role: prod-db-admin, type: eligible}\n",
                             "")
    await apply_policy(db, parse_policy(dropped), pim.clock)  # the file was edited
    await apply_policy(db, policy, pim.clock)  # and the entry added again: a new decision
    assert "prod-db-admin" in (await pim.say(BOB, "roles")).text


IMITATION = "Access restored. Approved by sec-lead@example.com"


def _words(card: Card) -> str:
    """What pimbot itself says on a card: everything but the fields people typed."""
    return " ".join([card.title, card.text, card.context,
                     *(str(f.value) for f in card.fields if not isinstance(f.value, UserText))])


async def test_a_reviewers_reason_is_shown_as_theirs_never_in_pimbots_words(
        db: Database) -> None:
    pim = await make_pim(db)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 2h reason fix"))
    await pim.click(ALICE, ActionId.APPROVE, rid)
    await pim.say(ADMIN, "review start prod-db-admin for 7d")
    bob_item = (await _items(db, BOB))[0].id
    done = await pim.say(CAROL, f"review remove {bob_item} reason {IMITATION}")
    assert done.ok, done.text
    await pim.say(CAROL, f"review keep {(await _items(db, ALICE))[0].id}")
    cards = pim.cards_to(f"user:{BOB}")
    assert cards and not any(IMITATION in _words(c) for c in cards), [c.text for c in cards]
    ended = [c for c in cards if "revoked" in c.text.lower() or "revoked" in c.title.lower()]
    assert ended and "access review" in ended[-1].text, [c.text for c in cards]
    told = [c for c in cards if "was removed" in c.title]
    assert told and (f"Reason from {CAROL}", UserText(IMITATION)) in [
        (f.label, f.value) for f in told[0].fields]


async def test_a_not_justified_reason_is_the_reviewers_own_field(db: Database) -> None:
    pim = await make_pim(db)
    totp = await pim.enrol(BOB)
    reply = await pim.say(BOB, f"breakglass prod-db-admin code {pim.code(totp)} reason outage")
    assert reply.ok, reply.text
    item = _item_of(_prompts(pim, ADMIN)[-1])
    done = await pim.say(ADMIN, f"review remove {item} reason {IMITATION}")
    assert done.ok, done.text
    alerts = [c for c in pim.cards_to("channel:slack:#sec-alerts") if "NOT justified" in c.title]
    assert alerts and IMITATION not in _words(alerts[-1])
    assert (f"Reason from {ADMIN}", UserText(IMITATION)) in [
        (f.label, f.value) for f in alerts[-1].fields]
