"""Who is acting: adapters resolve their platform user to an email before calling the core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    email: str
    platform: str = "console"
    user_id: str = ""
    display_name: str = ""
    in_direct_message: bool = True  # False when the command was typed in a shared channel
    command_prefix: str = ""  # how this platform's people type a command ("/pim " on Slack)
