"""Slack's outbound side: the core's ChatGateway over the Web API (slack_sdk AsyncWebClient).

Every call goes to ``PIMBOT_SLACK_API_URL`` and through slack_sdk's retry handlers, so a 429
is waited out per ``Retry-After`` and a dropped connection is retried. Errors other than "this
person or channel is not here" are raised, so the core's outbox job retries with backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from pimbot.ports import SentMessage, Unreachable
from pimbot.ui.cards import Card, Reply
from pimbot_slack.directory import SlackDirectory, slack_error
from pimbot_slack.render import (
    COMMAND_PREFIX,
    Mentions,
    mention_emails,
    render_message,
    render_reply,
)
from pimbot_slack.settings import SlackSettings

log = logging.getLogger(__name__)

PLATFORM = "slack"
SDK_LOGGER = "pimbot_slack.sdk"
IMAGE_FILENAME = "pimbot.png"
CHANNEL_GONE_ERRORS = frozenset(
    {"channel_not_found", "is_archived", "not_in_channel", "user_not_found", "cannot_dm_bot"}
)
# What chat.delete / files.delete answer for something already deleted: done, not an error.
ALREADY_GONE_ERRORS = frozenset({"message_not_found", "file_not_found", "file_deleted"})
IMAGE_ABOVE = "The QR code is the image just above this message."
IMAGE_NOT_SENT = (
    "pimbot could not upload the QR code here; enter the key by hand in your authenticator "
    "app instead."
)


def sdk_logger() -> logging.Logger:
    """slack_sdk's logger for pimbot's clients, never at DEBUG.

    slack_sdk logs whole request bodies when its logger's own level is DEBUG or unset, and a
    body can hold an MFA enrolment key or a code; so this logger keeps at WARNING unless a
    deployer sets it explicitly (and knowingly).
    """
    logger = logging.getLogger(SDK_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger


class CountedRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits ``Retry-After``), reporting each wait to ``on_wait``."""

    def __init__(self, on_wait: Callable[[float], None] | None, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.on_wait = on_wait

    async def prepare_for_next_attempt_async(self, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            await super().prepare_for_next_attempt_async(**kwargs)
        finally:
            if self.on_wait is not None:
                self.on_wait(time.monotonic() - started)


def build_client(settings: SlackSettings,
                 on_wait: Callable[[float], None] | None = None) -> AsyncWebClient:
    """The one Web API client: bot token, configurable base URL, 429/5xx/connection retries;
    ``on_wait(seconds)`` hears of every rate-limit wait (the metrics)."""
    return AsyncWebClient(
        token=settings.bot_token,
        base_url=settings.api_url,
        logger=sdk_logger(),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            CountedRateLimitHandler(on_wait, max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def slack_channel(channel: str) -> str:
    """``slack:#sec-alerts`` / ``#sec-alerts`` / ``C0123`` → what chat.postMessage accepts."""
    name = channel.removeprefix("slack:").strip()
    return name


class SlackGateway:
    """ChatGateway for Slack. ``SentMessage.ref`` is ``{"channel": ID, "ts": TS}``."""

    platform = PLATFORM
    command_prefix = COMMAND_PREFIX

    def __init__(self, client: AsyncWebClient, directory: SlackDirectory) -> None:
        self.client = client
        self.directory = directory

    async def can_reach(self, email: str) -> bool:
        return await self.directory.user_id_of(email) is not None

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        """A DM; a card with an image (an MFA enrolment QR code) uploads the image into the DM
        first, and the ref then names the file too (``file``), so ``delete`` removes both."""
        user_id = await self.directory.user_id_of(email)
        if user_id is None:
            raise Unreachable(f"{email} has no Slack account in this workspace")
        if card.image_png is None:
            return await self._post(user_id, card)
        return await self._post_with_image(user_id, card, card.image_png)

    async def send_to_channel(self, channel: str, card: Card) -> SentMessage:
        return await self._post(slack_channel(channel), card)

    async def update(self, sent: SentMessage, card: Card) -> None:
        message = render_message(card, await self.mentions([card]))
        await self.client.chat_update(channel=sent.ref["channel"], ts=sent.ref["ts"], **message)

    async def delete(self, sent: SentMessage) -> None:
        """``files.delete`` then ``chat.delete`` (the bot's own message: ``chat:write``); what
        Slack says is already gone counts as deleted."""
        file_id = sent.ref.get("file", "")
        if file_id:
            await _unless_gone(self.client.files_delete(file=file_id))
        if sent.ref.get("ts"):
            await _unless_gone(
                self.client.chat_delete(channel=sent.ref["channel"], ts=sent.ref["ts"])
            )
        log.info("Slack message deleted", extra={"channel": sent.ref.get("channel", "")})

    async def open_modal(self, trigger_id: str, view: dict[str, Any]) -> bool:
        """``views.open``; False when the trigger expired or was used (the caller falls back)."""
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in {"expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id"}:
                log.info("views.open refused the trigger", extra={"error": error})
                return False
            raise
        return True

    async def upload_image(
        self, user_id: str, png: bytes, *, title: str, alt: str
    ) -> str | None:
        """Put an image into the person's DM with pimbot (``files_upload_v2``); its file id.

        None, logged without any content, when Slack refuses or cannot be reached: the
        caller tells the person another way.
        """
        try:
            opened = await self.client.conversations_open(users=user_id)
            channel = str((opened.get("channel") or {}).get("id") or "")
            if not channel.startswith("D"):
                log.warning("no direct message channel for an image upload")
                return None
            uploaded = await self.client.files_upload_v2(
                channel=channel, file=png, filename=IMAGE_FILENAME, title=title, alt_txt=alt
            )
        except SlackApiError as exc:
            log.warning("image upload refused by Slack", extra={"error": slack_error(exc)})
            return None
        except Exception as exc:  # a failed upload must not cost the person their answer
            log.warning("image upload failed", extra={"error": type(exc).__name__})
            return None
        files = uploaded.get("files") or [{}]
        return str(files[0].get("id") or "") or None

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        await self.client.views_publish(user_id=user_id, view=view)

    async def post_reply_dm(self, user_id: str, reply: Reply) -> None:
        """A Reply as a DM, for when no response_url is at hand (a modal submitted later)."""
        cards = [reply.card] if reply.card else []
        await self.client.chat_postMessage(
            channel=user_id, **render_reply(reply, await self.mentions(cards))
        )

    async def mentions(self, cards: Sequence[Card]) -> Mentions:
        return await self.directory.user_ids_of(sorted(mention_emails(cards)))

    async def _post_with_image(self, user_id: str, card: Card, png: bytes) -> SentMessage:
        file_id = await self.upload_image(
            user_id, png, title=card.image_alt or card.title, alt=card.image_alt
        )
        note = IMAGE_ABOVE if file_id else IMAGE_NOT_SENT
        context = "\n".join(part for part in (note, card.context) if part)
        text_card = replace(card, image_png=None, image_text="", context=context)
        try:
            sent = await self._post(user_id, text_card)
        except Exception:
            if file_id:  # never leave the image behind without the message that owns it
                await _unless_gone(self.client.files_delete(file=file_id))
            raise
        if not file_id:
            return sent
        return SentMessage(PLATFORM, {**sent.ref, "file": file_id})

    async def _post(self, channel: str, card: Card) -> SentMessage:
        message = render_message(card, await self.mentions([card]))
        try:
            response = await self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            if slack_error(exc) in CHANNEL_GONE_ERRORS:
                raise Unreachable(f"Slack cannot deliver to {channel}: {slack_error(exc)}") from exc
            raise
        return SentMessage(
            PLATFORM, {"channel": str(response["channel"]), "ts": str(response["ts"])}
        )


async def _unless_gone(call: Awaitable[Any]) -> None:
    try:
        await call
    except SlackApiError as exc:
        if slack_error(exc) not in ALREADY_GONE_ERRORS:
            raise
