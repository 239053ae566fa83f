"""Reading Slack's payload shapes: command text, action ids, modal values, form context."""

from __future__ import annotations

import pytest
from fake_slack import fixture

from pimbot.ui.cards import ActionId
from pimbot_slack.translate import (
    action_in_direct_message,
    command_text,
    form_metadata,
    is_direct_message,
    parse_action_id,
    read_metadata,
    view_inputs,
)


async def test_command_text_turns_mentions_into_emails_and_unescapes() -> None:
    people = {"U0ALICE001": "alice@example.com"}

    async def email_of(user_id: str) -> str | None:
        return people.get(user_id)

    text = "assign <@U0ALICE001|alice> prod-db eligible reason a &amp; b &lt;x&gt; <@U0GHOST01>"
    assert await command_text(text, email_of) == (
        "assign alice@example.com prod-db eligible reason a & b <x> <@U0GHOST01>"
    )


def test_action_ids() -> None:
    assert parse_action_id("pim_approve") is ActionId.APPROVE
    assert parse_action_id("pim_activate:3") is ActionId.ACTIVATE
    assert parse_action_id("home_request_activation") is None


def test_view_inputs_read_the_fixture_submission() -> None:
    view = fixture("view_submission.json")["view"]
    assert view_inputs(view) == {
        "role_block": "62e90394-69f5-4237-9190-012177145e10",
        "justification_block": "INC-4711: rotate compromised app secret",
        "totp_block": "492031",
    }


def test_form_metadata_round_trips_and_fits() -> None:
    raw = form_metadata("req42", "https://hooks.slack.com/commands/T/1/x")
    context = read_metadata(raw)
    assert (context.value, context.response_url) == (
        "req42",
        "https://hooks.slack.com/commands/T/1/x",
    )
    assert len(form_metadata("v" * 5000, "u" * 5000)) <= 3000
    assert read_metadata("not json").value == ""
    # Slack's 3,000 characters of metadata can nest past what Python's parser recurses
    assert read_metadata("[" * 3000) == read_metadata("")


@pytest.mark.parametrize(
    ("channel_id", "channel_name", "private"),
    [
        ("D0PIMDM001", "directmessage", True),
        ("D0PIMDM001", "", True),
        ("G0LEGACY01", "directmessage", True),  # a DM between people (Slack says so by name)
        ("C0PIMAPPRV", "pim-approvals", False),
        ("G0PRIVATE1", "mpdm-alice--bob-1", False),  # a group DM is not a direct message
        ("", "", False),
    ],
)
def test_direct_messages_are_told_from_channels(
    channel_id: str, channel_name: str, private: bool
) -> None:
    assert is_direct_message(channel_id, channel_name) is private


def test_buttons_in_a_dm_or_the_app_home_are_private_and_in_a_channel_are_not() -> None:
    in_channel = fixture("block_actions.json")
    assert in_channel["channel"]["id"].startswith("C")
    assert action_in_direct_message(in_channel) is False
    in_dm = {**in_channel, "channel": {"id": "D0PIMDM001", "name": "directmessage"}}
    assert action_in_direct_message(in_dm) is True
    home = {k: v for k, v in in_channel.items() if k not in {"channel", "message"}}
    home["view"] = {"id": "V0PIMHOME1", "type": "home"}
    home["container"] = {"type": "view", "view_id": "V0PIMHOME1"}
    assert action_in_direct_message(home) is True
