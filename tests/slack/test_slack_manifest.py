"""The app manifest and the adapter's settings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from pimbot.domain.errors import PimError
from pimbot_server.cli import main
from pimbot_slack.manifest import BOT_SCOPES, EXAMPLE_URL, METHOD_SCOPES, render_manifest
from pimbot_slack.settings import DEFAULT_API_URL, SlackSettings

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest" / "slack" / "manifest.yaml"
ADAPTER = ROOT / "adapters" / "pimbot_slack"
CLIENTS = {"client", "_client"}  # the AsyncWebClient, as the adapter's modules name it


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
    assert render_manifest(socket_mode=True) == text


def test_manifest_slack_socket_mode_needs_no_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "slack", "--socket-mode"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in data["settings"]["interactivity"]
    assert "url" not in data["features"]["slash_commands"][0]


def test_manifest_slack_over_http_asks_for_the_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["manifest", "slack"]) == 2  # wrong usage
    assert "--url" in capsys.readouterr().err


@pytest.mark.parametrize(("url", "said"), [
    ("notaurl", "--url 'notaurl' is not an https:// URL with a host (try: pimbot manifest "
                "slack --url https://pim.example.com)"),
    ("https://", "--url 'https://' is not an https:// URL with a host (try: pimbot manifest "
                 "slack --url https://pim.example.com)"),
    ("pim.acme.test", "--url 'pim.acme.test' is not an https:// URL with a host (try: pimbot "
                      "manifest slack --url https://pim.example.com)"),
    ("http://pim.acme.test", "--url http://pim.acme.test: Slack sends requests only to "
                             "https:// URLs (try: pimbot manifest slack --url "
                             "https://pim.acme.test)"),
    ("https://pim.acme.test/?x=1", "--url 'https://pim.acme.test/?x=1': give the public base "
                                   "URL only, no user, query or fragment (try: pimbot manifest "
                                   "slack --url https://pim.example.com)"),
])  # fmt: skip
def test_manifest_slack_refuses_a_url_slack_would_not_call(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["manifest", "slack", "--url", url]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err.splitlines()) == ("", [f"pimbot: {said}"])


@pytest.mark.parametrize("url", ["https://pim.acme.test", "https://pim.acme.test/",
                                 "https://pim.acme.test/slack/events", "HTTPS://pim.acme.test"])
def test_manifest_slack_takes_an_https_base_url_or_the_request_url_itself(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["manifest", "slack", "--url", url]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["settings"]["interactivity"]["request_url"] == "https://pim.acme.test/slack/events"


def web_api_calls() -> set[str]:
    """Every ``client.METHOD(…)`` / ``self._client.METHOD(…)`` in the adapter's code."""
    called: set[str] = set()
    for path in ADAPTER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in CLIENTS:
                called.add(node.func.attr)
    return called


def test_the_manifest_requests_exactly_the_scopes_the_code_uses() -> None:
    called = web_api_calls()
    assert called == set(METHOD_SCOPES), "every Web API method called has its scopes listed"
    needed = {"commands"} | {scope for method in called for scope in METHOD_SCOPES[method]}
    data = yaml.safe_load(render_manifest(EXAMPLE_URL))
    assert set(data["oauth_config"]["scopes"]["bot"]) == needed == set(BOT_SCOPES)


def test_the_readme_says_why_each_scope_is_needed() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z:.]+)` \| (.+?) \|$", readme, re.MULTILINE))
    assert set(rows) >= set(BOT_SCOPES), sorted(set(BOT_SCOPES) - set(rows))
    assert all(len(rows[scope]) > 20 for scope in BOT_SCOPES)


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
