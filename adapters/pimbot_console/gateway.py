"""The console's ChatGateway: everyone is reachable, every card is printed to stdout.

The ``Screen`` remembers each printed card and, per person, the latest one they were shown
(a card sent to them, an update of it, or their own reply card), so ``click N`` can press
its buttons.

A sent message's reference names the run of the console that printed it (``run``), besides
its place on that run's screen (``index``) and its audience (``to``). A later run gets the
updates of cards an earlier run printed (an activation that expired while pimbot was not
running): those are not on this screen, so they are not redrawn as if they were (nor, by
their index, onto whatever this run printed there); one line says which card of an earlier
run changed, once per audience and content.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass

from pimbot.ports import SentMessage
from pimbot.ui.cards import Card
from pimbot_console.render import (
    COMMAND_PREFIX,
    render_card,
    render_deleted,
    render_earlier_update,
    render_update,
)

PLATFORM = "console"

log = logging.getLogger(__name__)


def _stdout_write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@dataclass
class Shown:
    audience: str  # an email, or "channel NAME"
    card: Card


class Screen:
    """Prints cards and tracks what each person saw last."""

    def __init__(self, write: Callable[[str], None] = _stdout_write) -> None:
        self._write = write
        self._shown: list[Shown] = []
        self._latest: dict[str, int] = {}
        self._printed: dict[str, Card] = {}  # per audience, the card last printed in full

    def print(self, text: str) -> None:
        if text:
            self._write(text if text.endswith("\n") else text + "\n")

    def print_inline(self, text: str) -> None:
        """Text without a newline (the prompt)."""
        self._write(text)

    def show(self, audience: str, card: Card, *, person: str | None = None) -> int:
        """Print a card; if it went to a person it becomes the one ``click`` presses."""
        index = len(self._shown)
        self._shown.append(Shown(audience, card))
        if person is not None:
            self._latest[person.lower()] = index
        self._printed[audience] = card
        self.print(render_card(card, audience))
        return index

    def redraw(self, index: int, card: Card) -> None:
        """An update prints one line (the card's new title and text), and only if it says
        something new: not when the card is unchanged, nor when the same card was just
        printed in full to the same audience (the answer to a deactivate, say)."""
        shown = self._shown[index]
        if shown.card == card:
            return
        shown.card = card
        if self._printed.get(shown.audience) == card:
            return
        self.print(render_update(card, shown.audience))

    def delete(self, index: int) -> None:
        """A terminal cannot unprint a card: say it was deleted, and forget it for ``click``."""
        shown = self._shown[index]
        for person, latest in list(self._latest.items()):
            if latest == index:
                del self._latest[person]
        self.print(render_deleted(shown.card, shown.audience))

    def latest_card(self, email: str) -> Card | None:
        index = self._latest.get(email.lower())
        return None if index is None else self._shown[index].card


class ConsoleGateway:
    """``ChatGateway`` for the console (platform ``console``)."""

    platform = PLATFORM
    command_prefix = COMMAND_PREFIX

    def __init__(self, screen: Screen, run: str | None = None) -> None:
        self.screen = screen
        self.run = run or secrets.token_hex(6)  # this run of the console
        self._earlier: set[str] = set()  # lines already printed for earlier runs' cards

    async def can_reach(self, email: str) -> bool:
        return True

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        return self._sent(self.screen.show(email, card, person=email), email)

    async def send_to_channel(self, channel: str, card: Card) -> SentMessage:
        audience = f"channel {channel}"
        return self._sent(self.screen.show(audience, card), audience)

    async def update(self, sent: SentMessage, card: Card) -> None:
        if not sent.ref.get("index", "").isdigit():
            log.warning("console update with an unknown message reference: %s", sent.ref)
            return
        index = self._here(sent)
        if index is None:
            self._earlier_update(sent, card)
            return
        self.screen.redraw(index, card)

    async def delete(self, sent: SentMessage) -> None:
        index = self._here(sent)
        if index is None:
            # Printed by an earlier run of the console: nothing left on this screen to forget.
            line = "  ✗ deleted: a message from an earlier console session"
            if line not in self._earlier:
                self._earlier.add(line)
                self.screen.print(line)
            return
        self.screen.delete(index)

    def _sent(self, index: int, audience: str) -> SentMessage:
        return SentMessage(PLATFORM, {"index": str(index), "run": self.run, "to": audience})

    def _here(self, sent: SentMessage) -> int | None:
        """Where a message is on this run's screen; None when an earlier run printed it."""
        raw = sent.ref.get("index", "")
        if sent.ref.get("run") != self.run or not raw.isdigit():
            return None
        return int(raw)

    def _earlier_update(self, sent: SentMessage, card: Card) -> None:
        line = render_earlier_update(card, sent.ref.get("to", ""))
        if line in self._earlier:
            return
        self._earlier.add(line)
        log.info("a card from an earlier console session changed")
        self.screen.print(line)
