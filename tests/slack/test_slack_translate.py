"""Reading Slack's payload shapes: command text, action ids, modal values, form context."""

from __future__ import annotations

from fake_slack import fixture

from pimbot.ui.cards import ActionId
from pimbot_slack.translate import (
    command_text,
    form_metadata,
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
