"""The App Home tab: on ``app_home_opened`` publish what the core says this person can do."""

from __future__ import annotations

import logging

from pimbot.ui.cards import Card, Tone
from pimbot.workflow.actor import Actor
from pimbot_slack.core_port import SlackCore
from pimbot_slack.gateway import SlackGateway
from pimbot_slack.render import render_home

log = logging.getLogger(__name__)

NO_EMAIL_CARD = Card(
    title="pimbot cannot see your email address",
    text=(
        "pimbot identifies people by email, and your Slack profile shows none to this app. "
        "Ask a Slack admin to add an email to your profile (the app needs the "
        "users:read.email scope)."
    ),
    tone=Tone.WARNING,
)


class HomeTab:
    def __init__(self, core: SlackCore, gateway: SlackGateway) -> None:
        self._core = core
        self._gateway = gateway

    async def publish(self, actor: Actor) -> None:
        """My eligible roles (Activate), my active roles (Deactivate), requests I approve."""
        cards = await self._core.home(actor)
        mentions = await self._gateway.mentions(cards)
        await self._gateway.publish_home(actor.user_id, render_home(cards, mentions))

    async def publish_without_email(self, user_id: str) -> None:
        await self._gateway.publish_home(user_id, render_home([NO_EMAIL_CARD], {}))
