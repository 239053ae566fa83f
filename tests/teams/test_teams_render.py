"""Adaptive Card rendering and activity translation, against the platform fixtures: every
view the core draws, every form, and the invoke responses are valid for the schema."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from adaptive_schema import assert_valid_card
from teams_driver import fixture

from pimbot.domain.states import RequestKind, RequestState
from pimbot.ui.cards import ActionId, Card, Choice, Form, Input, InputKind, Reply
from pimbot.ui.views import RequestSnapshot, View, Vote, render
from pimbot_teams.render import (
    action_of,
    invoke_error,
    invoke_message,
    outcome_card,
    render_card,
    render_form,
    render_reply_card,
    verb_of,
)
from pimbot_teams.translate import command_text, read_activity, read_invoke, read_submit

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SNAPSHOT = RequestSnapshot(
    id="req01", kind=RequestKind.ACTIVATION, email="bob@example.com", role="prod_db_admin",
    state=RequestState.PENDING_APPROVAL, duration=timedelta(hours=1),
    reason="- [click](https://evil.example) **now**", ticket="INC-42", requested_at=AT,
    start_at=AT, granted_at=None, expires_at=AT + timedelta(hours=1), ended_at=None,
    revoked_at=None, decided_at=None, decided_by="", decision_note="", failure="",
    min_approvals=1, approvers=("alice@example.com",), votes=(),
)
STATES = [RequestState.PENDING_APPROVAL, RequestState.ACTIVE, RequestState.DENIED,
          RequestState.EXPIRED, RequestState.FAILED]


REQUEST_VIEWS = [v for v in View if v not in {View.PROBLEM, View.INFO} and
                 not v.value.startswith("review")]  # review cards: the scenario suite


@pytest.mark.parametrize("view", REQUEST_VIEWS)
@pytest.mark.parametrize("state", STATES)
def test_every_view_in_every_state_is_a_valid_card(view: View, state: RequestState) -> None:
    votes = (Vote("alice@example.com", "approve", "", AT),) if state is not \
        RequestState.PENDING_APPROVAL else ()
    snapshot = replace(SNAPSHOT, state=state, votes=votes, decided_by="alice@example.com",
                       decided_at=AT, failure="provider said no")
    card = render(view, snapshot, "activated")
    content = render_card(card, ("29:alice",) if card.actions else ())
    assert_valid_card(content)
    assert len(content.get("actions", [])) == len(card.actions)


def test_user_text_is_escaped_and_buttons_are_action_execute_with_a_submit_fallback() -> None:
    content = render_card(render(View.APPROVAL, SNAPSHOT))
    fields = {e["inlines"][0]["text"]: e["inlines"][1]["text"] for e in content["body"]
              if e["type"] == "RichTextBlock" and len(e["inlines"]) == 2}
    assert fields["Reason: "] == "“- [click](https[:]//evil[.]example) **now**”", \
        "a quotation (ui.quoting), and a TextRun: no markdown, no link"
    assert all(SNAPSHOT.reason not in e.get("text", "") for e in content["body"]), \
        "never in a TextBlock, where it would be markdown"
    assert content["body"][0]["inlines"][0]["text"].endswith("prod_db_admin")
    approve, deny = content["actions"]
    assert approve == {"type": "Action.Execute", "title": "Approve", "verb": "pimApprove",
                       "data": {"id": "req01"}, "style": "positive",
                       "fallback": {"type": "Action.Submit", "title": "Approve",
                                    "data": {"action": "pimApprove", "id": "req01"}}}
    assert deny["verb"] == "pimDeny" and deny["style"] == "destructive"
    outbound = fixture("teams_outbound_approval_card_activity.json")
    reference = outbound["attachments"][0]["content"]
    assert set(approve) == set(reference["actions"][0]) | {"style"}, "the fixture's shape"


def test_times_are_drawn_in_each_readers_zone() -> None:
    content = render_card(render(View.NOTICE, replace(SNAPSHOT, state=RequestState.ACTIVE),
                                 "activated"))
    (expires,) = [e["text"] for e in content["body"] if e["type"] == "TextBlock"]
    assert expires == "**Expires:** {{DATE(2026-12-01T10:00:00Z, SHORT)}} " \
                      "{{TIME(2026-12-01T10:00:00Z)}}"
    assert_valid_card(content)


def test_every_form_is_a_valid_card() -> None:
    form = Form(title="Activate a role", submit=ActionId.SUBMIT_ACTIVATION, value="prod",
                submit_label="Activate", inputs=(
                    Input("role", "Role", InputKind.SELECT, initial="prod",
                          choices=(Choice("prod — the database", "prod"), Choice("b", "b"))),
                    Input("duration", "Duration", InputKind.SELECT, initial="1h",
                          choices=(Choice("1h", "1h"),)),
                    Input("reason", "Justification", InputKind.MULTILINE, initial="x"),
                    Input("ticket", "Ticket", required=False, placeholder="INC-42"),
                    Input("code", "Authenticator code", InputKind.CODE)))
    content = render_form(form, intro="Which role?")
    assert_valid_card(content)
    by_id = {e["id"]: e for e in content["body"] if "id" in e}
    assert by_id["role"]["type"] == "Input.ChoiceSet" and by_id["role"]["value"] == "prod"
    assert by_id["reason"]["isMultiline"] is True and by_id["reason"]["value"] == "x"
    assert by_id["code"]["regex"] == "^[0-9]{6}$" and "value" not in by_id["code"]
    assert by_id["ticket"]["isRequired"] is False
    (submit,) = content["actions"]
    assert (submit["verb"], submit["data"]) == ("pimSubmitActivation", {"id": "prod"})
    card = Card(title="Set up", text="Key: ABC", image_png=b"\x89PNG fake", image_alt="QR")
    both = render_reply_card(Reply(card=card, form=form))
    assert both is not None
    assert_valid_card(both)
    assert any(e["type"] == "Image" for e in both["body"])


def test_an_outcome_card_keeps_what_was_shown_without_buttons_or_inputs() -> None:
    shown = render_card(render(View.APPROVAL, SNAPSHOT), ("29:alice",))
    done = outcome_card(shown, "Approved request req01.", ok=True)
    assert_valid_card(done)
    assert "actions" not in done and done["refresh"]["userIds"] == ["29:alice"]
    assert done["body"][-1]["inlines"][0]["text"] == "Approved request req01." and \
        done["body"][-1]["separator"] is True
    assert_valid_card(outcome_card(None, "", ok=False))


def test_invoke_responses_have_the_fixtures_shapes() -> None:
    assert invoke_error(400, "BadRequest", "Unknown verb 'pimFoo'") == \
        fixture("teams_invoke_response_error.json")
    assert invoke_message("Request req_01JGX8Z3K9QW7 approved.") == \
        fixture("teams_invoke_response_message.json")
    assert_valid_card(fixture("teams_invoke_response_card.json")["value"])


def test_verbs_round_trip() -> None:
    for action in ActionId:
        assert action_of(verb_of(action)) is action
    assert verb_of(ActionId.SUBMIT_MFA_CONFIRM) == "pimSubmitMfaConfirm"


def test_the_fixture_activities_translate() -> None:
    message = read_activity(fixture("teams_message.json"))
    assert message.personal and message.tenant_id == "9f8e7d6c-5b4a-4321-9abc-def012345678"
    assert command_text(message) == "activate Global Administrator 2h"
    mention = read_activity(fixture("teams_channel_mention.json"))
    assert not mention.personal and command_text(mention) == "activate Security Administrator 1h"
    assert mention.teams_channel_id.startswith("19:6848")
    assert mention.lookup_conversation == mention.team_id
    invoke = read_invoke(read_activity(fixture("teams_invoke_adaptive_card_action.json")))
    assert invoke is not None and invoke.action is ActionId.APPROVE
    assert (invoke.value, invoke.inputs) == ("req_01JGX8Z3K9QW7", {"comment": "ok for INC-4711"})
    submit = read_submit(read_activity(fixture("teams_action_submit.json")))
    assert submit is not None and submit.verb == "submitTotp" and submit.action is None
    assert submit.inputs == {"totp": "492031"}
    with pytest.raises(ValueError):
        read_activity({"text": "no type"})
