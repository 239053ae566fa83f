"""The app manifest and the adapter's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pimbot.domain.errors import PimError
from pimbot_slack.manifest import EXAMPLE_URL, render_manifest
from pimbot_slack.settings import DEFAULT_API_URL, SlackSettings

MANIFEST = Path(__file__).resolve().parents[2] / "manifest" / "slack" / "manifest.yaml"


def test_the_shipped_manifest_is_the_rendered_one() -> None:
    assert MANIFEST.read_text() == render_manifest(EXAMPLE_URL)


def test_manifest_points_every_request_url_at_slack_events() -> None:
    data = yaml.safe_load(render_manifest("https://pim.acme.test/"))
    url = "https://pim.acme.test/slack/events"
    assert data["features"]["slash_commands"][0]["url"] == url
    assert data["features"]["slash_commands"][0]["should_escape"] is True
    assert data["settings"]["interactivity"]["request_url"] == url
    assert data["settings"]["event_subscriptions"]["request_url"] == url
    assert data["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert "users:read.email" in data["oauth_config"]["scopes"]["bot"]
    assert "files:write" in data["oauth_config"]["scopes"]["bot"], "the MFA QR code upload"
    assert data["settings"]["socket_mode_enabled"] is False


def test_socket_mode_manifest_needs_no_public_url() -> None:
    text = render_manifest("https://unused.test", socket_mode=True)
    data = yaml.safe_load(text)
    assert data["settings"]["socket_mode_enabled"] is True
    assert "unused.test" not in text


def test_settings_from_env() -> None:
    settings = SlackSettings.from_env(
        {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cr3t"}
    )
    assert settings.api_url == DEFAULT_API_URL and not settings.socket_mode
    assert "s3cr3t" not in repr(settings) and "xoxb-1" not in repr(settings)
    gov = SlackSettings.from_env(
        {
            "SLACK_BOT_TOKEN": "x",
            "SLACK_APP_TOKEN": "xapp",
            "PIMBOT_SLACK_API_URL": "https://slack-gov.com/api",
        }
    )
    assert gov.api_url == "https://slack-gov.com/api/" and gov.socket_mode


@pytest.mark.parametrize(
    "env",
    [{}, {"SLACK_BOT_TOKEN": "xoxb-1"}],
    ids=["no-token", "http-without-signing-secret"],
)
def test_settings_refuse_what_cannot_work(env: dict[str, str]) -> None:
    with pytest.raises(PimError) as raised:
        SlackSettings.from_env(env)
    assert raised.value.hint
