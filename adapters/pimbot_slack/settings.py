"""Slack settings, built from the environment mapping the composition root hands over."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pimbot.domain.errors import ErrorCode, PimError

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_IDENTITY_TTL_S = 3600.0
TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,}")


@dataclass(frozen=True)
class SlackSettings:
    """Credentials and endpoints; secrets are kept out of ``repr`` (and so out of logs)."""

    bot_token: str = field(repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    identity_ttl_s: float = DEFAULT_IDENTITY_TTL_S
    team_id: str = ""  # the served workspace (T…) or organisation (E…); else from auth.test

    def is_response_url(self, url: str) -> bool:
        """Whether ``url`` is one of Slack's response URLs, the only places an answer is
        POSTed: ``https://hooks.<the Web API's host>/`` (``hooks.slack.com``, or GovSlack's
        ``hooks.slack-gov.com``), or the Web API's own origin (a local fake in tests). A
        signed payload naming any other host is answered in a DM instead, never sent
        there (pimbot would otherwise POST to whatever internal address it names)."""
        try:
            asked, api = urlsplit(url), urlsplit(self.api_url)
            same_origin = (asked.scheme, asked.hostname, asked.port) == (
                api.scheme, api.hostname, api.port)
        except ValueError:  # a port that is not a number
            return False
        if asked.username is not None or asked.password is not None:
            return False
        hooks = "hooks." + (api.hostname or "").removeprefix("www.")
        return same_origin or (asked.scheme == "https" and asked.port is None
                               and asked.hostname == hooks)

    @property
    def socket_mode(self) -> bool:
        """Socket Mode when an app-level token (``xapp-…``) is configured."""
        return bool(self.app_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackSettings:
        bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
        signing_secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        app_token = env.get("SLACK_APP_TOKEN", "").strip()
        api_url = env.get("PIMBOT_SLACK_API_URL", "").strip() or DEFAULT_API_URL
        team_id = env.get("PIMBOT_SLACK_TEAM_ID", "").strip()
        if team_id and not TEAM_ID.fullmatch(team_id):
            raise PimError(
                ErrorCode.NOT_AVAILABLE,
                f"PIMBOT_SLACK_TEAM_ID={team_id!r} is not a Slack team id (T…) or "
                "organisation id (E…)",
                "leave it unset to take the bot token's own workspace",
            )
        if not bot_token:
            raise PimError(
                ErrorCode.NOT_AVAILABLE,
                "SLACK_BOT_TOKEN is not set, so the Slack adapter cannot start",
                "copy the Bot User OAuth Token (xoxb-…) from the Slack app's OAuth page",
            )
        if not app_token and not signing_secret:
            raise PimError(
                ErrorCode.NOT_AVAILABLE,
                "SLACK_SIGNING_SECRET is not set, and Slack over HTTP needs it to verify requests",
                "copy the Signing Secret from the Slack app's Basic Information page, "
                "or set SLACK_APP_TOKEN to use Socket Mode",
            )
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            team_id=team_id,
        )
