"""The console's ChatGateway: everyone is reachable, every card is printed to stdout.

The ``Screen`` remembers each printed card and, per person, the latest one they were shown
(a card sent to them, an update of it, or their own reply card), so ``click N`` can press
its buttons.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from pimbot.ports import SentMessage
from pimbot.ui.cards import Card
from pimbot_console.render import render_card, render_deleted, render_update

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
        self.print(render_card(card, audience))
        return index

    def redraw(self, index: int, card: Card) -> None:
        """An update prints one line (the card's new title and text), and only if it changed."""
        shown = self._shown[index]
        if shown.card == card:
            return
        shown.card = card
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

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    async def can_reach(self, email: str) -> bool:
        return True

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        index = self.screen.show(email, card, person=email)
        return SentMessage(PLATFORM, {"index": str(index)})

    async def send_to_channel(self, channel: str, card: Card) -> SentMessage:
        index = self.screen.show(f"channel {channel}", card)
        return SentMessage(PLATFORM, {"index": str(index)})

    async def update(self, sent: SentMessage, card: Card) -> None:
        raw = sent.ref.get("index", "")
        if not raw.isdigit():
            log.warning("console update with an unknown message reference: %s", sent.ref)
            return
        try:
            self.screen.redraw(int(raw), card)
        except IndexError:
            # A card printed by an earlier run of the console: show it afresh.
            log.info("redrawing a card from an earlier console session")
            self.screen.print(render_card(card, "(earlier session)", updated=True))

    async def delete(self, sent: SentMessage) -> None:
        raw = sent.ref.get("index", "")
        try:
            self.screen.delete(int(raw))
        except (ValueError, IndexError):
            # Printed by an earlier run of the console: nothing left on this screen to forget.
            self.screen.print(f"  ✗ deleted: a message from an earlier console session ({raw})")
