"""The Slack ChatGateway and directory against the fake Slack Web API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fake_slack import ALICE, BOB, FakeSlack

from pimbot.ports import SentMessage, Unreachable
from pimbot.testing.fakes import FakeClock
from pimbot.ui.cards import ActionId, Button, ButtonStyle, Card, Field, Form, Input, Mention
from pimbot_slack.directory import SlackDirectory
from pimbot_slack.gateway import SlackGateway, build_client
from pimbot_slack.render import render_modal
from pimbot_slack.settings import SlackSettings
from pimbot_slack.translate import form_metadata

HOSTILE = "fix <!channel> now <@U0ADMIN01>"


def gateway_for(fake: FakeSlack, clock: FakeClock | None = None,
                on_wait: Callable[[float], None] | None = None) -> SlackGateway:
    settings = SlackSettings(bot_token="xoxb-test", signing_secret="s", api_url=fake.api_url)
    client = build_client(settings, on_wait)
    return SlackGateway(client, SlackDirectory(client, clock or FakeClock(), timedelta(hours=1)))


def approval(reason: str = HOSTILE) -> Card:
    return Card(
        title="Approval needed",
        text=reason,
        fields=(Field("Requester", Mention(BOB[1], BOB[2])), Field("Reason", reason)),
        actions=(
            Button("Approve", ActionId.APPROVE, "r1", ButtonStyle.PRIMARY),
            Button("Deny", ActionId.DENY, "r1", ButtonStyle.DANGER),
        ),
    )


async def test_a_card_to_a_person_is_a_dm_to_their_user_id(fake_slack: FakeSlack) -> None:
    gateway = gateway_for(fake_slack)
    sent = await gateway.send_to_user(ALICE[1], approval())
    post = fake_slack.calls_to("chat.postMessage")[-1]
    assert post.args["channel"] == ALICE[0]
    assert sent == SentMessage("slack", {"channel": "D" + ALICE[0][1:], "ts": sent.ref["ts"]})
    assert post.args["text"]
    buttons = next(b for b in post.args["blocks"] if b["type"] == "actions")["elements"]
    assert {b["action_id"] for b in buttons} == {"pim_approve", "pim_deny"}
    assert f"<@{BOB[0]}>" in fake_slack.outgoing_text()


async def test_channel_mentions_in_a_reason_never_reach_slack(fake_slack: FakeSlack) -> None:
    gateway = gateway_for(fake_slack)
    sent = await gateway.send_to_user(ALICE[1], approval())
    await gateway.send_to_channel("slack:#sec-alerts", approval())
    await gateway.update(sent, approval())
    assert len(fake_slack.calls_to("chat.update")) == 1
    outgoing = fake_slack.outgoing_text()
    assert "<!channel>" not in outgoing and "<@U0ADMIN01>" not in outgoing
    assert "&lt;!channel&gt;" in outgoing


async def test_a_429_is_waited_out_and_the_card_still_arrives(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=1)
    waits: list[float] = []
    gateway = gateway_for(fake_slack, on_wait=waits.append)
    sent = await gateway.send_to_user(ALICE[1], approval())
    statuses = [c.status for c in fake_slack.calls if c.method == "chat.postMessage"]
    assert statuses == [429, 200]
    assert sent.ref["ts"]
    assert len(waits) == 1 and waits[0] > 0, "the wait is reported (metrics)"


async def test_someone_not_in_the_workspace_is_unreachable(fake_slack: FakeSlack) -> None:
    gateway = gateway_for(fake_slack)
    assert not await gateway.can_reach("nobody@example.com")
    with pytest.raises(Unreachable):
        await gateway.send_to_user("nobody@example.com", approval())
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_missing_channel_is_unreachable(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(Unreachable):
        await gateway_for(fake_slack).send_to_channel("#gone", approval())


async def test_other_api_errors_raise_so_the_job_retries(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.update", "internal_error")
    gateway = gateway_for(fake_slack)
    with pytest.raises(Exception, match="internal_error"):
        await gateway.update(SentMessage("slack", {"channel": "D1", "ts": "1.2"}), approval())


async def test_lookups_are_cached_until_the_ttl_passes(fake_slack: FakeSlack) -> None:
    clock = FakeClock()
    gateway = gateway_for(fake_slack, clock)
    await gateway.send_to_user(ALICE[1], approval("x"))
    await gateway.send_to_user(ALICE[1], approval("y"))
    assert len(fake_slack.calls_to("users.lookupByEmail")) == 2  # alice, then bob's mention
    clock.advance(timedelta(hours=2))
    await gateway.send_to_user(ALICE[1], approval("z"))
    assert len(fake_slack.calls_to("users.lookupByEmail")) == 4
    assert await gateway.directory.email_of(BOB[0]) == BOB[1]
    assert await gateway.directory.email_of(BOB[0]) == BOB[1]
    assert len(fake_slack.calls_to("users.info")) == 1


async def test_a_modal_needs_a_fresh_trigger(fake_slack: FakeSlack) -> None:
    gateway = gateway_for(fake_slack)
    form = Form(
        title="Deny", submit=ActionId.SUBMIT_DENY, inputs=(Input("reason", "Reason"),), value="r1"
    )
    modal = render_modal(form, form_metadata(form.value, ""))
    assert await gateway.open_modal("t1", modal)
    fake_slack.fail("views.open", "expired_trigger_id")
    assert not await gateway.open_modal("t2", modal)
    view = fake_slack.calls_to("views.open")[0].args["view"]
    assert view["callback_id"] == "pim_submit_deny"
