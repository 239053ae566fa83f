"""The Slack app manifest (``pimbot manifest slack --url URL``; manifest/slack/manifest.yaml).

Paste the output into "Create an app → From an app manifest". With Socket Mode on, Slack
needs no public URL: the request URLs are left out and an app-level token (``xapp-…``, scope
``connections:write``) goes into ``SLACK_APP_TOKEN``.
"""

from __future__ import annotations

from typing import Any

import yaml

from pimbot_slack.app import EVENTS_PATH

BOT_SCOPES = (
    "commands",  # /pim
    "chat:write",  # DMs, approval cards, chat.update
    "chat:write.public",  # notices to public channels pimbot was not invited to
    "files:write",  # the MFA enrolment QR code, uploaded into the person's DM
    "im:write",  # open a DM with an approver
    "users:read",  # users.info
    "users:read.email",  # users.info → profile.email, users.lookupByEmail
)
EXAMPLE_URL = "https://pimbot.example.com"


def manifest_data(url: str, *, socket_mode: bool = False) -> dict[str, Any]:
    request_url = url.rstrip("/") + EVENTS_PATH
    command: dict[str, Any] = {
        "command": "/pim",
        "description": "Request, approve and review privileged access",
        "usage_hint": "activate ROLE for 1h reason TEXT | roles | status | help",
        "should_escape": True,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    events: dict[str, Any] = {"bot_events": ["app_home_opened"]}
    if not socket_mode:
        command["url"] = request_url
        interactivity["request_url"] = request_url
        events["request_url"] = request_url
    return {
        "display_information": {
            "name": "pimbot",
            "description": "Just-in-time privileged access, approved in Slack",
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "pimbot", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def render_manifest(url: str, *, socket_mode: bool = False) -> str:
    """The manifest as YAML, request URLs pointing at ``URL/slack/events``."""
    header = (
        "# pimbot Slack app manifest: Slack → Create New App → From an app manifest.\n"
        "# Regenerate for your URL with: pimbot manifest slack --url https://your.host\n"
    )
    body = yaml.safe_dump(manifest_data(url, socket_mode=socket_mode), sort_keys=False)
    return header + body
