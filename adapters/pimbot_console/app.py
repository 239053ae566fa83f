"""The console adapter: chat with pimbot from a terminal or a piped script.

Lines are read from stdin (a daemon thread, so it works for terminals, pipes and files
alike); every line is one chat message, except the console's own words:
``as EMAIL``, ``click N``, ``wait DUR``, ``help`` and ``quit``. After each line the core
drains every job due now, so notifications print before the next prompt.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol, TextIO

from pimbot.commands.help import help_text, topic_word
from pimbot.domain.durations import format_duration, parse_duration
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.ui.cards import ActionId, Card, FollowUp, Reply
from pimbot.workflow.actor import Actor
from pimbot_console.gateway import ConsoleGateway, Screen
from pimbot_console.render import render_reply_text
from pimbot_console.words import CONSOLE_TOPICS

log = logging.getLogger(__name__)

CONSOLE_HELP = """\
console: as EMAIL (act as that person) · click N (press button N of your latest card)
         wait DUR (let real time pass, e.g. wait 5s) · quit (or end of input)"""

PROMPT_SUFFIX = "> "
MAX_WAIT = timedelta(hours=1)


class ConsoleCore(Protocol):
    """What the console needs of ``pimbot.workflow.core.PimCore``."""

    async def handle_text(self, actor: Actor, text: str) -> Reply: ...

    async def handle_action(
        self, actor: Actor, action: ActionId, value: str, inputs: Mapping[str, str] | None = None
    ) -> Reply: ...

    async def drain(self) -> None: ...

    async def remember_identity(self, platform: str, user_id: str, email: str) -> None: ...


class StdinLines:
    """Lines from a text stream, read by a daemon thread into an asyncio queue."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._thread: threading.Thread | None = None

    @property
    def interactive(self) -> bool:
        try:
            return self._stream.isatty()
        except (AttributeError, ValueError):
            return False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._pump, args=(loop,), name="console-stdin", daemon=True
        )
        self._thread.start()

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            line = self._stream.readline()
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, line or None)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                return
            if not line:
                return

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        if self._thread is None:
            self.start()
        line = await self._queue.get()
        return None if line is None else line.rstrip("\r\n")


class ConsoleSession:
    """One person at the keyboard, switching between the people they act as."""

    def __init__(self, core: ConsoleCore, screen: Screen, acting_as: str) -> None:
        self.core = core
        self.screen = screen
        self.actor = Actor(email=acting_as.lower(), platform="console", user_id=acting_as.lower())

    @property
    def prompt(self) -> str:
        return self.actor.email + PROMPT_SUFFIX

    async def run(self, lines: StdinLines) -> None:
        """Read and answer lines until end of input or ``quit``."""
        await self._remember(self.actor.email)
        while True:
            if lines.interactive:
                self.screen.print_inline(self.prompt)
            line = await lines.readline()
            if line is None or not await self.handle_line(line):
                return

    async def handle_line(self, line: str) -> bool:
        """Answer one line; False when the person asked to quit."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        if text.lower() in {"quit", "exit"}:
            return False
        try:
            await self._dispatch(text)
        except PimError as exc:  # one line, its hint written as the core's replies are
            self.screen.print(render_reply_text(Reply(ok=False, text=exc.message,
                                                      hint=exc.hint or "")))
        except Exception:
            log.exception("console line failed")
            self.screen.print("something went wrong; the details are in the log (stderr)")
        await self.core.drain()
        return True

    async def _dispatch(self, text: str) -> None:
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        match word.lower():
            case "as":
                await self._act_as(rest)
            case "click":
                await self._click(rest)
            case "wait":
                await self._wait(rest)
            case "help" if not rest:
                self.screen.print(CONSOLE_HELP)
                self._show(await self.core.handle_text(self.actor, text))
            case "help" if topic_word(rest) in CONSOLE_TOPICS:
                self.screen.print(help_text(rest, "", CONSOLE_TOPICS))
            case "quit" | "exit":  # alone, it quits (handle_line)
                raise PimError(ErrorCode.PARSE, f"'{word.lower()}' takes nothing after it; "
                               f"type {word.lower()} alone to leave", word.lower())
            case _:
                self._show(await self.core.handle_text(self.actor, text))

    async def _act_as(self, email: str) -> None:
        if " " in email or "@" not in email:
            raise PimError(ErrorCode.PARSE, "'as' needs one email address", "as bob@example.com")
        self.actor = Actor(email=email.lower(), platform="console", user_id=email.lower())
        await self._remember(self.actor.email)
        self.screen.print(f"now acting as {self.actor.email}")

    async def _click(self, number: str) -> None:
        if not number.isdigit():
            raise PimError(ErrorCode.PARSE, f"'click {number}' needs a button number", "click 1")
        card = self.screen.latest_card(self.actor.email)
        if card is None:
            raise PimError(
                ErrorCode.STATE, f"no card has been shown to {self.actor.email} yet", "status"
            )
        index = int(number)
        if not 1 <= index <= len(card.actions):
            raise PimError(ErrorCode.PARSE, f"the latest card shown to you ({card.title}) has "
                           f"no button {index}; {buttons_of(card)}",
                           _safe_click(card))
        button = card.actions[index - 1]
        # A button that asks first (button.confirm) goes ahead here: `click N` is the press
        # that answers its question, as DESIGN.md's console contract has it (scripts press once).
        self._show(await self.core.handle_action(self.actor, button.action, button.value))

    async def _wait(self, text: str) -> None:
        if not text:
            raise PimError(ErrorCode.PARSE, "'wait' needs a duration", "wait 5s")
        try:
            delay = parse_duration(text)
        except PimError as error:  # its message names the forms; the hint is the command
            raise PimError(error.code, error.message, "wait 5s") from None
        if delay > MAX_WAIT:  # real time: a typo like 99999d would hang the console
            raise PimError(ErrorCode.PARSE,
                           f"'wait' waits in real time, at most {format_duration(MAX_WAIT)}; "
                           f"{text} is longer", "wait 5s")
        await asyncio.sleep(delay.total_seconds())

    def _show(self, reply: Reply) -> None:
        self.screen.print(render_reply_text(reply))
        if reply.card is not None:
            self.screen.show(self.actor.email, reply.card, person=self.actor.email)

    async def _remember(self, email: str) -> None:
        await self.core.remember_identity("console", email, email)


def _safe_click(card: Card) -> str:
    """A hint for a button number the card lacks: its first button that asks nothing (one
    that cancels or deactivates is never suggested), else the card's own follow-up, the
    command the core hints on every platform for it (``pending`` on an approver's card,
    ``status`` on a requester's, ``reviews`` on a review item's), else ``status``."""
    for number, button in enumerate(card.actions, start=1):
        if button.confirm is None:
            return f"click {number}"
    return card.follow_up or FollowUp.STATUS


def buttons_of(card: Card) -> str:
    """Which buttons ``card`` has, numbered as they are drawn: ``its buttons are [1] Extend
    and [2] Deactivate`` (or that it has none)."""
    drawn = [f"[{i}] {b.label}" for i, b in enumerate(card.actions, start=1)]
    if not drawn:
        return "it has no buttons"
    if len(drawn) == 1:
        return f"its only button is {drawn[0]}"
    return f"its buttons are {', '.join(drawn[:-1])} and {drawn[-1]}"


class ConsoleAdapter:
    """The console's two sides: its gateway (outbound) and its session (stdin)."""

    name = "console"

    def __init__(self, core: ConsoleCore, acting_as: str, screen: Screen | None = None) -> None:
        self.screen = screen if screen is not None else Screen()
        self.gateway = ConsoleGateway(self.screen)
        self.session = ConsoleSession(core, self.screen, acting_as)

    async def run(self, lines: StdinLines | None = None) -> None:
        source = lines if lines is not None else StdinLines()
        if source.interactive:
            self.screen.print(f"pimbot console: acting as {self.session.actor.email}; type help")
        await self.session.run(source)
