"""What each inbound Slack request does: ack first, translate, call the core, render the answer.

Answers to the person who acted are ephemeral: through the request's ``response_url`` when
there is one (slash commands, message buttons, modals opened from them), else as a DM from
the bot. Nothing here decides who may do what; the core does. Every path that acts gets its
``Actor`` from ``SlackHandlers.actor``, which first tells the core where the request came
from and who sent it (``Caller``): another workspace, a person of another organisation, or a
guest is refused there, in one line, before anything else happens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.webhook.async_client import AsyncWebhookClient

from pimbot.domain.admission import Caller, Standing
from pimbot.domain.errors import PimError
from pimbot.ui.cards import Reply
from pimbot.workflow.actor import Actor
from pimbot_slack.core_port import SlackCore
from pimbot_slack.directory import SlackProfile
from pimbot_slack.gateway import PLATFORM, SlackGateway, sdk_logger
from pimbot_slack.home import HomeTab
from pimbot_slack.render import COMMAND_PREFIX, render_modal, render_reply
from pimbot_slack.translate import (
    TooManyMentions,
    action_in_direct_message,
    command_text,
    form_metadata,
    is_direct_message,
    parse_action_id,
    read_metadata,
    view_inputs,
)
from pimbot_slack.workspace import Origin, WorkspaceSource, origin_of

log = logging.getLogger(__name__)

VIEW_ACK_BUDGET_S = 2.0  # a view_submission is answered in its ack when the core is this quick
NO_EMAIL = (
    "pimbot cannot see an email address on your Slack profile, and it identifies people by "
    "email (try: ask a Slack admin to add one; the app needs the users:read.email scope)"
)
FAILED = "Something went wrong on pimbot's side; nothing was changed (try: again in a minute)"
FORM_EXPIRED = "Slack's form window closed before pimbot could open it (try: the command again)"
UNKNOWN_BUTTON = (
    "That button is not one pimbot knows (perhaps from a card of an older pimbot); "
    "nothing was changed"
)


class NoEmail(Exception):
    """The Slack user has no email pimbot can see."""


class Refused(Exception):
    """The core refused the caller at the edge; ``reply`` says so in one line."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


class SlackHandlers:
    def __init__(
        self, core: SlackCore, gateway: SlackGateway, workspace: WorkspaceSource,
        is_response_url: Callable[[str], bool],
    ) -> None:
        self.core = core
        self.is_response_url = is_response_url
        self.gateway = gateway
        self.directory = gateway.directory
        self.workspace = workspace
        self.home = HomeTab(core, gateway)

    async def actor(
        self, user_id: str, origin: Origin, what: str, *, in_direct_message: bool = False
    ) -> Actor:
        """The person behind a request, once the core has admitted them (else Refused)."""
        fresh = not self.directory.is_cached(user_id)
        caller, profile = await self.caller(user_id, origin)
        refusal = await self.core.admit(caller, what)
        if refusal is not None:
            raise Refused(refusal)
        if profile is None or not profile.email:
            raise NoEmail(user_id)
        email = profile.email.strip().lower()
        if fresh:
            await self.core.remember_identity(PLATFORM, user_id, email, profile.display_name)
        return Actor(
            email=email,
            platform=PLATFORM,
            user_id=user_id,
            display_name=profile.display_name,
            in_direct_message=in_direct_message,
            command_prefix=COMMAND_PREFIX,
        )

    async def caller(self, user_id: str, origin: Origin) -> tuple[Caller, SlackProfile | None]:
        """Who sent a request and where they stand; a request from another workspace is not
        looked up (``users.info`` would only ask Slack about someone else's person)."""
        served = await self.workspace.get()
        team = origin.team_id or origin.enterprise_id
        if not served.serves(origin):
            return Caller(PLATFORM, user_id, Standing.OTHER_WORKSPACE, team=team), None
        profile = await self.directory.profile(user_id)
        if profile is None:
            raise NoEmail(user_id)
        standing = served.standing_of(profile)
        inside = standing in {Standing.MEMBER, Standing.GUEST}  # Slack vouches for the email
        email = profile.email.strip().lower() if inside else ""
        return Caller(PLATFORM, user_id, standing, email=email, team=team), profile

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """``/pim …``: an empty ack at once (Slack's 3 s), then the work, then the answer."""
        await ack()
        user_id = str(body.get("user_id", ""))
        answer = Answer(self, user_id, str(body.get("response_url", "")))

        async def work() -> Reply:
            private = is_direct_message(
                str(body.get("channel_id", "")), str(body.get("channel_name", ""))
            )
            actor = await self.actor(user_id, origin_of(body), "command",
                                     in_direct_message=private)
            text = await command_text(str(body.get("text", "")), self.directory.email_of)
            return await self.core.handle_text(actor, text)

        reply = await guarded(work)
        await answer.send(reply, trigger_id=str(body.get("trigger_id", "")))

    async def on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """A button: the action id names the ActionId, the value is the object id."""
        await ack()
        user_id = str((body.get("user") or {}).get("id", ""))
        action = (body.get("actions") or [{}])[0]
        sent_id = str(action.get("action_id", ""))
        action_id = parse_action_id(sent_id)
        value = str(action.get("value") or (action.get("selected_option") or {}).get("value", ""))
        answer = Answer(self, user_id, str(body.get("response_url", "")))
        admitted: Actor | None = None

        async def work() -> Reply:
            nonlocal admitted
            admitted = await self.actor(user_id, origin_of(body),
                                        str(action_id or "unknown_action"),
                                        in_direct_message=action_in_direct_message(body))
            if action_id is None:  # forged, or a card from a pimbot that had other buttons
                log.warning("a Slack button pimbot does not know was pressed",
                            extra={"action_id": sent_id[:64], "user": admitted.email})
                return Reply(text=UNKNOWN_BUTTON, ok=False, hint="status")
            return await self.core.handle_action(admitted, action_id, value)

        reply = await guarded(work)
        await answer.send(reply, trigger_id=str(body.get("trigger_id", "")))
        if admitted is not None and (body.get("view") or {}).get("type") == "home":
            await self.home.publish(admitted)

    async def on_view_submission(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """A modal submitted: field errors go back in the ack, anything else after it."""
        user_id = str((body.get("user") or {}).get("id", ""))
        view: dict[str, Any] = body.get("view") or {}
        action_id = parse_action_id(str(view.get("callback_id", "")))
        if action_id is None:
            await ack()
            return
        context = read_metadata(str(view.get("private_metadata", "")))
        inputs = view_inputs(view)
        answer = Answer(self, user_id, context.response_url)

        async def work() -> Reply:
            # where the modal was opened is not known, so not as in a direct message
            actor = await self.actor(user_id, origin_of(body), str(action_id))
            return await self.core.handle_action(actor, action_id, context.value, inputs)

        task = asyncio.ensure_future(guarded(work))
        done, _ = await asyncio.wait({task}, timeout=VIEW_ACK_BUDGET_S)
        if task not in done:
            await ack()
            await answer.send(with_errors_as_text(await task))
            return
        reply = task.result()
        errors = {k: v[:2000] for k, v in reply.field_errors.items() if k in inputs}
        if errors:
            await ack(response_action="errors", errors=errors)
        elif reply.form is not None:
            metadata = form_metadata(reply.form.value, context.response_url)
            await ack(response_action="update", view=render_modal(reply.form, metadata))
        else:
            await ack()
            await answer.send(with_errors_as_text(reply))

    async def on_home(self, user_id: str, origin: Origin) -> None:
        try:  # the Home is private, as a direct message is
            actor = await self.actor(user_id, origin, "app_home", in_direct_message=True)
        except NoEmail:
            await self.home.publish_without_email(user_id)
            return
        except Refused:
            return  # audited by the core; a refused person gets no Home
        await self.home.publish(actor)


class Answer:
    """Where a Reply for one person goes: response_url (ephemeral) or else a DM."""

    def __init__(self, handlers: SlackHandlers, user_id: str, response_url: str) -> None:
        self.gateway = handlers.gateway
        self.user_id = user_id
        self.response_url = response_url
        if response_url and not handlers.is_response_url(response_url):
            log.warning("a Slack request's response_url is not Slack's; answering in a DM")
            self.response_url = ""

    async def send(self, reply: Reply, trigger_id: str = "") -> None:
        if reply.form is not None:
            metadata = form_metadata(reply.form.value, self.response_url)
            view = render_modal(reply.form, metadata)
            if trigger_id and await self.gateway.open_modal(trigger_id, view):
                return  # the modal is the answer; reply.text is for surfaces without forms
            reply = Reply(text="\n".join(t for t in (FORM_EXPIRED, reply.text) if t), ok=False)
        if not reply.text and reply.card is None:
            return
        if not self.response_url:
            await self.gateway.post_reply_dm(self.user_id, reply)
            return
        cards = [reply.card] if reply.card else []
        message = render_reply(reply, await self.gateway.mentions(cards))
        webhook = AsyncWebhookClient(self.response_url, logger=sdk_logger())
        response = await webhook.send(**message, response_type="ephemeral", replace_original=False)
        if response.status_code >= 300:
            log.warning("response_url refused the answer", extra={"status": response.status_code})
            await self.gateway.post_reply_dm(self.user_id, reply)


async def guarded(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """The core's answer, or a one-line refusal: a person never sees a stack trace."""
    try:
        return await work()
    except Refused as refused:
        return refused.reply
    except NoEmail:
        return Reply(text=NO_EMAIL, ok=False)
    except TooManyMentions as exc:
        return Reply(text=str(exc), ok=False)
    except PimError as exc:
        return Reply(text=str(exc), ok=False)
    except Exception:
        log.exception("Slack request failed")
        return Reply(text=FAILED, ok=False)


def with_errors_as_text(reply: Reply) -> Reply:
    if not reply.field_errors:
        return reply
    lines = [reply.said(COMMAND_PREFIX)] if reply.text or reply.hint else []
    lines.extend(f"{name}: {message}" for name, message in reply.field_errors.items())
    return Reply(text="\n".join(lines), card=reply.card, ok=False)
