"""The request-signing helper against Slack's known-answer vector and the shared fixtures."""

from __future__ import annotations

import json

from fake_slack import FIXTURES

from pimbot_slack.verify import slack_signature


def test_known_answer_vector() -> None:
    vector = json.loads((FIXTURES / "slack_signatures.json").read_text())
    kav = vector["official_known_answer_vector"]
    assert (
        slack_signature(kav["signing_secret"], kav["timestamp"], kav["body"])
        == kav["expected_signature"]
    )


def test_every_fixture_body_signature_matches() -> None:
    data = json.loads((FIXTURES / "slack_signatures.json").read_text())
    for name, expected in data["requests"].items():
        body = (FIXTURES / name).read_bytes()
        signature = slack_signature(data["signing_secret"], data["x_slack_request_timestamp"], body)
        assert signature == expected["x_slack_signature"], name
