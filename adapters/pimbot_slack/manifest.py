"""The Slack app manifest (``pimbot manifest slack --url URL``; manifest/slack/manifest.yaml).

Paste the output into "Create an app → From an app manifest". With Socket Mode on
(``pimbot manifest slack --socket-mode``), Slack needs no public URL: the request URLs are
left out and an app-level token (``xapp-…``, scope ``connections:write``) goes into
``SLACK_APP_TOKEN``.

The bot scopes are exactly those of the Web API methods the adapter calls
(``METHOD_SCOPES``, checked against the code by a test), plus ``commands`` for ``/pim``.
"""

from __future__ import annotations

from typing import Any

import yaml

from pimbot_slack.app import EVENTS_PATH

# Each Web API method the adapter calls (slack_sdk's name) → the bot scopes it needs.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth_test": (),  # which workspace the token serves
    "chat_postMessage": ("chat:write", "chat:write.public"),  # .public: channels not joined
    "chat_update": ("chat:write",),
    "chat_delete": ("chat:write",),  # the bot's own MFA enrolment message
    "files_delete": ("files:write",),  # the enrolment QR code it uploaded
    "conversations_open": ("im:write",),
    "files_upload_v2": ("files:write",),  # files.getUploadURLExternal + completeUploadExternal
    "users_info": ("users:read", "users:read.email"),  # .email: profile.email
    "users_lookupByEmail": ("users:read.email",),
    "views_open": (),
    "views_publish": (),
}
# Each bot scope the manifest requests, and why (the README's scope table says the same).
BOT_SCOPES: dict[str, str] = {
    "commands": "the /pim slash command",
    "chat:write": "approval cards and notices as DMs and channel posts, redrawn with "
    "chat.update, and chat.delete of the MFA enrolment message once confirmed",
    "chat:write.public": "notices to the public channels in a role's notify: list without "
    "inviting pimbot first",
    "files:write": "the MFA enrolment QR code, uploaded into the person's DM, and "
    "files.delete of it once enrolment is confirmed (or after 15 minutes)",
    "im:write": "conversations.open: the DM channel an MFA QR code is uploaded into",
    "users:read": "users.info: who sent a request, their workspace and whether they are "
    "a guest or from another organisation",
    "users:read.email": "profile.email in users.info and users.lookupByEmail: pimbot "
    "identifies people by email and finds approvers by it",
}
EXAMPLE_URL = "https://pimbot.example.com"


def manifest_data(url: str | None, *, socket_mode: bool = False) -> dict[str, Any]:
    """The manifest; ``url`` (the public base URL) is needed unless in Socket Mode."""
    if not socket_mode and not url:
        raise ValueError("a Slack app over HTTP needs the public URL of /slack/events")
    request_url = (url or "").rstrip("/") + EVENTS_PATH
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


def render_manifest(url: str | None = None, *, socket_mode: bool = False) -> str:
    """The manifest as YAML, request URLs pointing at ``URL/slack/events`` (none in Socket
    Mode)."""
    header = (
        "# pimbot Slack app manifest: Slack → Create New App → From an app manifest.\n"
        "# Regenerate for your URL with: pimbot manifest slack --url https://your.host\n"
        "# (or, with no public URL: pimbot manifest slack --socket-mode)\n"
    )
    body = yaml.safe_dump(manifest_data(url, socket_mode=socket_mode), sort_keys=False)
    return header + body
