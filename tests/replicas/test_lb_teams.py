"""Teams with two ``pimbot run`` replicas behind a round-robin load balancer.

The Bot Connector posts each activity to whichever replica the balancer picks: a request
typed on replica 0 is approved by an ``Action.Execute`` invoke answered by replica 1 (HTTP
200 with the updated card), every copy is redrawn, and the conversation reference that
replica 0 stored when a person installed pimbot is what replica 1 uses to message them
proactively (here after replica 0 was killed, so nobody else could have sent it). The Bot
Connector's retry of an activity on the other replica is acted on once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fake_connector import FakeBotFramework
from lb_cluster import Cluster, cluster, until, until_async
from sqlalchemy import select
from teams_driver import ALICE, BOB, CAROL, PEOPLE, Person, TeamsDriver
from teams_rig import buttons, card_text
from webhook_receiver import WebhookReceiver

from pimbot.store.tables import PlatformIdentityRow

pytestmark = pytest.mark.postgres

ADAPTIVE = "application/vnd.microsoft.card.adaptive"


@pytest.fixture
async def fake_teams() -> AsyncIterator[FakeBotFramework]:
    fake = FakeBotFramework([p.member for p in PEOPLE])
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def two(tmp_path: Path, empty_pg: str, receiver: WebhookReceiver,
              fake_teams: FakeBotFramework) -> AsyncIterator[tuple[Cluster, TeamsDriver]]:
    settings = {"PIMBOT_ADAPTERS": "teams", **fake_teams.env()}
    async with cluster(tmp_path, empty_pg, receiver, 2, settings) as replicas, \
            aiohttp.ClientSession(base_url=replicas.balancer.url) as http:
        yield replicas, TeamsDriver(http, fake_teams)  # type: ignore[arg-type]


def cards(fake: FakeBotFramework, who: Person) -> list[tuple[str, dict[str, Any]]]:
    """(activity id, card as it is now) of the cards in the person's chat, oldest first."""
    return [(aid, a["content"]) for (conv, aid), activity in fake.activities.items()
            if conv == who.chat for a in activity.get("attachments") or []
            if a.get("contentType") == ADAPTIVE]


def approval_cards(fake: FakeBotFramework, who: Person) -> list[tuple[str, dict[str, Any]]]:
    """The cards about Bob's requests in an approver's chat."""
    return [(aid, card) for aid, card in cards(fake, who) if "bob@example.com" in card_text(card)]


async def seen_by(driver: TeamsDriver, who: Person, card_id: str,
                  card: dict[str, Any]) -> dict[str, Any]:
    """The card as its reader's Teams client shows it: one sent as its status, with the
    reader in ``refresh.userIds``, is replaced by the answer to the automatic refresh."""
    refresh = card.get("refresh") or {}
    if who.user_id not in (refresh.get("userIds") or []):
        return card
    action = refresh["action"]
    response = await driver.post(driver.invoke(who, action["verb"], action.get("data") or {},
                                               card_id, trigger="automatic"))
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    assert answer["type"] == ADAPTIVE, answer
    return dict(answer["value"])


def replies_to(fake: FakeBotFramework, activity: dict[str, Any]) -> list[Any]:
    return [c for c in fake.sent() if isinstance(c.body, dict)
            and c.body.get("replyToId") == activity["id"]]


async def stored_reference(replicas: Cluster, who: Person) -> dict[str, Any] | None:
    async with replicas.db.read() as session:
        row = await session.scalar(select(PlatformIdentityRow).where(
            PlatformIdentityRow.platform == "teams", PlatformIdentityRow.user_id == who.user_id))
        return None if row is None else row.conversation_ref


async def test_typed_on_one_replica_approved_on_the_other_messaged_through_the_stored_ref(
        two: tuple[Cluster, TeamsDriver], fake_teams: FakeBotFramework) -> None:
    replicas, driver = two
    balancer = replicas.balancer
    for who in (ALICE, CAROL, BOB):  # every install lands on replica 0
        balancer.next_to(0)
        response = await driver.post(driver.installed(who))
        assert response.status == 201
    assert {s.backend for s in balancer.served} == {0}

    async def everyone_known() -> bool:
        return all([await stored_reference(replicas, w) for w in (ALICE, CAROL, BOB)])

    await until_async(everyone_known, "the installs' conversation references", replicas)

    balancer.next_to(0)
    asked = driver.message(BOB, "activate prod-db-admin for 1h reason restore")
    response = await driver.post(asked)
    assert response.status == 201
    response = await driver.post(asked)  # the Bot Connector's retry, on the other replica
    assert response.status == 201
    assert [s.backend for s in balancer.served[-2:]] == [0, 1]
    await until(lambda: approval_cards(fake_teams, ALICE) and approval_cards(fake_teams, CAROL)
                and replies_to(fake_teams, asked), "both approvers' cards", cluster=replicas)
    card_id, sent = approval_cards(fake_teams, ALICE)[0]
    balancer.next_to(1)
    card = await seen_by(driver, ALICE, card_id, sent)  # the refresh, on the other replica
    verb, data = buttons(card)["Approve"]

    balancer.next_to(1)
    response = await driver.post(driver.invoke(ALICE, verb, data, card_id))
    assert balancer.served[-1].backend == 1, "the press landed on the other replica"
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["statusCode"] == 200 and answer["type"] == ADAPTIVE, answer
    assert "actions" not in answer["value"], "the pressed card loses its buttons"
    assert f"Approved request {data['id']}" in card_text(answer["value"])

    await until(lambda: replicas.hooks("grant"), "the grant", cluster=replicas)

    def copies_decided() -> bool:
        return all("actions" not in c and "Approved by alice@example.com" in card_text(c)
                   for who in (ALICE, CAROL) for _, c in approval_cards(fake_teams, who)[:1])

    await until(copies_decided, "every copy redrawn as approved", cluster=replicas)

    # Replica 0 stored every reference and is now gone: what reaches the approvers next is
    # sent by replica 1, through those references.
    replicas.replicas[0].kill()
    await replicas.replicas[0].reap()
    before = len(approval_cards(fake_teams, ALICE))
    response = await driver.post(driver.message(BOB, "deactivate prod-db-admin"))
    assert response.status == 201
    await until(lambda: replicas.hooks("revoke"), "the revoke", cluster=replicas)
    response = await driver.post(driver.message(BOB, "activate prod-db-admin for 1h "
                                                     "reason again"))
    assert response.status == 201
    await until(lambda: all(len(approval_cards(fake_teams, who)) == before + 1
                            for who in (ALICE, CAROL)),
                "new approval cards sent by the surviving replica", cluster=replicas)
    assert {s.backend for s in balancer.served[-2:]} == {1}, "only replica 1 is left"
    newest_id, newest = approval_cards(fake_teams, ALICE)[-1]
    assert "Approve" in buttons(await seen_by(driver, ALICE, newest_id, newest))
    assert [d.activation_id for d in replicas.hooks("grant")] == [data["id"]]
    assert [d.activation_id for d in replicas.hooks("revoke")] == [data["id"]]
    assert len(await replicas.requests()) == 2
    assert len(replies_to(fake_teams, asked)) == 1, "the retried activity was answered once"
    await replicas.verify_chain()
