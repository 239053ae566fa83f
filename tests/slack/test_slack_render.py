"""Block Kit rendering: escaping of people's text, Slack's limits, dates, mentions, modals."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pimbot.ui.cards import (
    ActionId,
    Button,
    ButtonStyle,
    Card,
    Choice,
    Field,
    Form,
    Input,
    InputKind,
    Mention,
    Reply,
    Time,
    UserText,
)
from pimbot_slack.render import (
    MAX_MESSAGE_BLOCKS,
    escape,
    render_home,
    render_message,
    render_modal,
    render_reply,
)

HOSTILE = "restore <!channel> <!here> <@U0ADMIN01> <http://evil.example|bank> & more"


def approval_card(reason: str = HOSTILE) -> Card:
    return Card(
        title="Approval needed: prod-db",
        text=f"Reason: {reason}",
        fields=(
            Field("Requester", Mention("bob@example.com", "Bob")),
            Field("Reason", reason),
            Field("Expires", Time(datetime(2026, 11, 2, 10, 30, tzinfo=UTC))),
        ),
        actions=(
            Button("Approve", ActionId.APPROVE, "r1", ButtonStyle.PRIMARY),
            Button("Deny", ActionId.DENY, "r1", ButtonStyle.DANGER),
        ),
        context=reason,
    )


def test_user_text_cannot_ping_or_forge_a_link() -> None:
    message = render_message(approval_card(), {"bob@example.com": "U0BOB00001"})
    dumped = json.dumps(message)
    for raw in ("<!channel>", "<!here>", "<@U0ADMIN01>", "<http://evil.example|bank>"):
        assert raw not in dumped
    assert "&lt;!channel&gt;" in dumped
    assert "&amp; more" in dumped
    assert message["text"] and "<!channel>" not in message["text"]


def test_mentions_and_times_are_drawn_natively() -> None:
    message = render_message(approval_card("x"), {"bob@example.com": "U0BOB00001"})
    fields = [f["text"] for b in message["blocks"] if "fields" in b for f in b["fields"]]
    assert "*Requester*\n<@U0BOB00001>" in fields
    stamp = int(datetime(2026, 11, 2, 10, 30, tzinfo=UTC).timestamp())
    assert (
        f"*Expires*\n<!date^{stamp}^{{date_short_pretty}} {{time}}|2026-11-02 10:30 UTC>" in fields
    )


def test_an_unresolved_mention_shows_the_email_escaped() -> None:
    card = Card(title="t", fields=(Field("Who", Mention("x<y@example.com", "")),))
    text = json.dumps(render_message(card, {}))
    assert "x&lt;y@example.com" in text


def test_buttons_keep_action_ids_values_and_styles() -> None:
    blocks = render_message(approval_card("x"), {})["blocks"]
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [(a["action_id"], a["value"], a.get("style")) for a in actions] == [
        ("pim_approve", "r1", "primary"),
        ("pim_deny", "r1", "danger"),
    ]


def test_repeated_actions_in_one_card_get_distinct_action_ids() -> None:
    card = Card(
        title="Roles", actions=tuple(Button(f"Activate {n}", ActionId.ACTIVATE, n) for n in "abc")
    )
    ids = [
        e["action_id"]
        for b in render_message(card, {})["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert ids == ["pim_activate", "pim_activate:1", "pim_activate:2"]


def test_limits_are_respected_for_huge_cards() -> None:
    card = Card(
        title="T" * 400,
        text="line\n" * 3000,
        fields=tuple(Field(f"f{i}", "v" * 2500) for i in range(35)),
        actions=tuple(Button("B" * 100, ActionId.APPROVE, str(i)) for i in range(60)),
        context="c" * 5000,
    )
    message = render_message(card, {})
    blocks = message["blocks"]
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if "fields" in block:
            assert len(block["fields"]) <= 10
            assert all(len(f["text"]) <= 2000 for f in block["fields"])
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            assert all(len(e["text"]["text"]) <= 75 for e in block["elements"])
    assert len(message["text"]) <= 3000


def test_clipping_never_cuts_an_entity_in_half() -> None:
    card = Card(title="t", context="<" * 4000)
    context = render_message(card, {})["blocks"][-1]["elements"][0]["text"]
    assert context.endswith("&lt;…")


def test_reply_text_is_escaped_and_split_into_sections() -> None:
    reply = Reply(text="\n".join(f"line {i} <!channel>" for i in range(400)))
    rendered = render_reply(reply, {})
    sections = [b for b in rendered["blocks"] if b["type"] == "section"]
    assert len(sections) > 1
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert "<!channel>" not in json.dumps(rendered)


def test_modal_from_a_form() -> None:
    form = Form(
        title="Activate a role for a longer while",
        submit=ActionId.SUBMIT_ACTIVATION,
        submit_label="Request",
        inputs=(
            Input(
                "role",
                "Role",
                InputKind.SELECT,
                initial="db",
                choices=(Choice("Prod DB", "db"), Choice("Web", "web")),
            ),
            Input("reason", "Justification", InputKind.MULTILINE, initial="<!channel>"),
            Input("code", "TOTP code", InputKind.CODE, required=False),
        ),
        value="req42",
        text="Pick a role",
    )
    view = render_modal(form, json.dumps({"value": form.value}))
    assert view["type"] == "modal"
    assert view["callback_id"] == "pim_submit_activation"
    assert len(view["title"]["text"]) <= 24
    assert json.loads(view["private_metadata"]) == {"value": "req42"}
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    select = inputs["role"]["element"]
    assert select["type"] == "static_select"
    assert select["initial_option"]["value"] == "db"
    assert [o["value"] for o in select["options"]] == ["db", "web"]
    reason = inputs["reason"]["element"]
    assert reason["type"] == "plain_text_input" and reason["multiline"] is True
    code = inputs["code"]
    assert code["optional"] is True
    assert (code["element"]["min_length"], code["element"]["max_length"]) == (6, 6)


def test_home_has_a_divider_between_cards_and_stays_within_100_blocks() -> None:
    cards = [approval_card("x") for _ in range(30)]
    view = render_home(cards, {})
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    assert sum(1 for b in view["blocks"] if b["type"] == "divider") >= 10


def test_escape() -> None:
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"


def test_a_display_name_in_mrkdwn_has_no_formatting_or_link() -> None:
    name = "*Admin*\n_ok_ evil.example"
    card = Card(title="t", fields=(Field("Who", Mention("b@x.test", name)),))
    fields = [f["text"] for b in render_message(card, {})["blocks"] for f in b.get("fields", [])]
    assert fields == ["*Who*\n∗Admin∗ ↵ ˍokˍ evil[.]example (b@x.test)"]


def test_user_text_fields_follow_the_grid_as_plain_text_beside_their_label() -> None:
    card = Card(title="t", fields=(Field("Role", "db"), Field("Reason", UserText("*x*")),
                                   Field("Approvals", "0 of 1")))
    blocks = render_message(card, {})["blocks"]
    grid, said = (b["fields"] for b in blocks if "fields" in b)
    assert [f["text"] for f in grid] == ["*Role*\ndb", "*Approvals*\n0 of 1"]
    assert said == [{"type": "mrkdwn", "text": "*Reason*"},
                    {"type": "plain_text", "text": "“*x*”", "emoji": False}]
