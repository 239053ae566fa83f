"""What each authenticated activity does: translate, call the core, render the answer.

- ``message``: a command (personal chat, or a channel post that mentions pimbot), answered
  in the personal chat's thread; from a channel or group chat, in the person's personal chat
  (opened if need be), the thread told only that pimbot answered there (``gateway.reply``);
  an ``Action.Submit`` (old clients) is a button press.
- ``invoke`` ``adaptiveCard/action``: a button or form on a card (``Action.Execute``),
  answered synchronously with the card that replaces it for the person who pressed: a form
  when the core asks for more (a reason to deny, an MFA code), the card without its buttons
  and with the outcome when it is done, or a one-line message when it was refused (the card
  stays as it was, inputs and all). ``pimRefresh`` answers with the card as last drawn, or,
  for an approval card (its refresh names the request), with the card the core draws for
  the reader: Approve / Deny for someone who may decide it now, the status for anyone else
  with a part in it; the core refuses anyone without one (the card as shown is kept).
- ``conversationUpdate`` / ``installationUpdate``: the person and their conversation
  reference are learned; a team the bot was added to is remembered for channel posts. An
  uninstall (``action: remove``) or pimbot removed from a team (``membersRemoved``) forgets
  the reference, or marks the team and its channels removed: nothing is sent there again
  until pimbot is added back.

Nothing here decides who may do what; the core does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from pimbot.domain.errors import PimError
from pimbot.ui.cards import Reply
from pimbot_teams.connector import ConnectorError
from pimbot_teams.core_port import TeamsCore
from pimbot_teams.directory import PLATFORM, NoEmail, Refused, TeamsPeople
from pimbot_teams.gateway import TeamsGateway
from pimbot_teams.render import (
    COMMAND_PREFIX,
    VIEW_KEY,
    Element,
    decider_refresh,
    invoke_card,
    invoke_error,
    invoke_message,
    outcome_card,
    render_card,
    render_form,
    render_reply_card,
)
from pimbot_teams.store import TeamsStore
from pimbot_teams.translate import (
    Inbound,
    Press,
    added_members,
    command_text,
    read_invoke,
    read_submit,
    removed_members,
)

log = logging.getLogger(__name__)

CARD_ACTION = "adaptiveCard/action"
NO_EMAIL = (
    "pimbot cannot see an email address for your Teams account, and it identifies people by "
    "email (try: ask your Microsoft 365 admin to give your account a mail address)"
)
FAILED = "Something went wrong on pimbot's side; nothing was changed (try: again in a minute)"
GONE = "This card is no longer current; type pim status for the latest."
UNKNOWN_BUTTON = (
    "That button is not one pimbot knows (perhaps from a card of an older pimbot); "
    "nothing was changed"
)


class TeamsHandlers:
    def __init__(self, core: TeamsCore, people: TeamsPeople, gateway: TeamsGateway,
                 store: TeamsStore) -> None:
        self.core = core
        self.people = people
        self.gateway = gateway
        self.store = store

    async def on_activity(self, inbound: Inbound) -> None:
        """Any activity but an invoke (those are answered in the HTTP response)."""
        try:
            match inbound.type:
                case "message":
                    await self.on_message(inbound)
                case "conversationUpdate" | "installationUpdate":
                    await self.on_membership(inbound)
        except Exception:
            log.exception("Teams %s activity failed", inbound.type)

    async def on_message(self, inbound: Inbound) -> None:
        await self._remember_place(inbound)
        press = read_submit(inbound)
        if press is not None:
            reply = await guarded(lambda: self._press(inbound, press))
        else:
            if not command_text(inbound):
                return
            reply = await guarded(lambda: self._text(inbound))
        await self.gateway.reply(inbound, reply)

    async def on_membership(self, inbound: Inbound) -> None:
        if bot_left(inbound):
            await self._forget(inbound)
            return
        await self._remember_place(inbound)
        if inbound.team_id and inbound.bot_id in added_members(inbound):
            await self.store.team_added(inbound.team_id)
        await self.people.learn(inbound)

    async def _forget(self, inbound: Inbound) -> None:
        """pimbot was uninstalled (personal scope) or removed from a team: it stops sending
        there. The person stays known by email, without a conversation to message them in,
        so they are reported unreachable, as someone who never installed pimbot is, until
        they install it again (which stores the reference again)."""
        if inbound.personal:
            forgot = await self.core.forget_reference(PLATFORM, inbound.user_id,
                                                      inbound.conversation_id)
            log.info("pimbot was uninstalled from a Teams personal chat (reference %s)",
                     "forgotten" if forgot else "already gone")
            return
        team = inbound.team_id or inbound.conversation_id.split(";", 1)[0]
        removed = await self.store.team_removed(team)
        log.info("pimbot was removed from a Teams team (%d places no longer posted to)",
                 removed)

    async def on_invoke(self, inbound: Inbound) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for an invoke activity."""
        if inbound.name != CARD_ACTION:
            return 501, {}
        press = read_invoke(inbound)
        if press is None:
            return 200, invoke_error(400, "BadRequest", "Only Action.Execute is supported")
        shown = await self.store.card(inbound.conversation_id, inbound.reply_to_id)
        if press.refresh and press.value and press.inputs.get(VIEW_KEY):
            return 200, invoke_card(await self._decider_view(inbound, press, shown))
        if press.refresh:
            return 200, invoke_card(shown) if shown is not None else invoke_message(GONE)
        reply = await guarded(lambda: self._press(inbound, press))
        return 200, invoke_answer(reply, shown)

    async def _decider_view(self, inbound: Inbound, press: Press,
                            shown: Element | None) -> Element:
        """A decider card's refresh: the core draws it for this reader (Approve / Deny if
        they may decide now, the status otherwise). Someone pimbot cannot place, or the
        core refuses (no part in the request), gets the card as sent, which has no buttons."""
        try:
            actor = await self.people.actor(inbound, "refresh")
            card = await self.core.card_for(actor, press.value, press.inputs[VIEW_KEY])
        except (NoEmail, Refused, PimError, ConnectorError) as exc:
            log.info("Teams card refresh answered with the card as sent (%s)",
                     type(exc).__name__)
            return shown if shown is not None else outcome_card(None, GONE, False)
        if not card.actions:
            return render_card(card)
        return render_card(card, refresh=decider_refresh(card, [inbound.user_id]))

    async def _text(self, inbound: Inbound) -> Reply:
        actor = await self.people.actor(inbound, "command")
        text = command_text(inbound, await self.people.mentioned(inbound))
        return spoken(await self.core.handle_text(actor, text))

    async def _press(self, inbound: Inbound, press: Press) -> Reply:
        actor = await self.people.actor(inbound, str(press.action or "unknown_action"))
        if press.action is None:  # forged, or a card from a pimbot that had other buttons
            log.warning("a Teams button pimbot does not know was pressed",
                        extra={"verb": press.verb[:64], "user": actor.email})
            return spoken(Reply(ok=False, text=UNKNOWN_BUTTON, hint="status"))
        inputs = press.inputs or None  # None: a button, not a form
        return spoken(await self.core.handle_action(actor, press.action, press.value, inputs))

    async def _remember_place(self, inbound: Inbound) -> None:
        """Channels and teams heard from, for posting notices to them later."""
        if inbound.personal or not inbound.service_url:
            return
        place = inbound.teams_channel_id or inbound.team_id or \
            inbound.conversation_id.split(";", 1)[0]
        if place.startswith("19:"):
            kind = "team" if place == inbound.team_id else "channel"
            await self.store.remember_place(place, inbound.tenant_id, inbound.service_url,
                                            kind, inbound.team_name if kind == "team" else "",
                                            team_id=inbound.team_id)


def bot_left(inbound: Inbound) -> bool:
    """An ``installationUpdate`` removing pimbot, or a ``conversationUpdate`` whose
    ``membersRemoved`` holds pimbot itself (removed from a team, or a personal chat)."""
    if inbound.type == "installationUpdate":
        return str(inbound.raw.get("action") or "").startswith("remove")
    return bool(inbound.bot_id) and inbound.bot_id in removed_members(inbound)


def spoken(reply: Reply) -> Reply:
    """The core's hint written the Teams way (``pim …``), into the text Teams shows."""
    return replace(reply, text=reply.said(COMMAND_PREFIX), hint="") if reply.hint else reply


def invoke_answer(reply: Reply, shown: Element | None) -> dict[str, Any]:
    """What replaces the pressed card for the person who pressed it."""
    if reply.form is not None:
        return invoke_card(render_form(reply.form, reply.card, reply.text))
    if not reply.ok or reply.field_errors:
        return invoke_message(with_errors_as_text(reply).text or FAILED)
    card = render_reply_card(reply)
    if card is not None:
        return invoke_card(card)
    return invoke_card(outcome_card(shown, reply.text, reply.ok))


async def guarded(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """The core's answer, or a one-line refusal: a person never sees a stack trace."""
    try:
        return await work()
    except NoEmail:
        return Reply(text=NO_EMAIL, ok=False)
    except Refused as refused:
        return refused.reply
    except PimError as exc:
        return Reply(text=str(exc), ok=False)
    except ConnectorError as exc:
        log.warning("Teams request failed at the Bot Connector (%s)", exc.status)
        return Reply(text=FAILED, ok=False)
    except Exception:
        log.exception("Teams request failed")
        return Reply(text=FAILED, ok=False)


def with_errors_as_text(reply: Reply) -> Reply:
    if not reply.field_errors:
        return reply
    lines = [reply.text] if reply.text else []
    lines.extend(f"{name}: {message}" for name, message in reply.field_errors.items())
    return Reply(text="\n".join(lines), card=reply.card, ok=False)
