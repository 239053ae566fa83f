"""The console Driver: lines fed through the console adapter's own ``ConsoleSession``.

Each person has a session (so two people can press at once) on one shared ``Screen``, the
console adapter's ``ConsoleGateway`` is the core's only chat platform, and what pimbot
printed during a line is that line's answer. The console has no forms: ``submit`` types the
command the console tells the person to type instead.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta

from scenario_driver import SeenCard

from pimbot.policy import parse_policy
from pimbot.policy.plan import apply_policy
from pimbot.secretbox import SecretBox
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.ui.cards import ActionId, Button, Card, Form, Reply
from pimbot.workflow.actor import Actor
from pimbot.workflow.core import PimCore
from pimbot.workflow.mfa.service import MfaService
from pimbot_console.app import ConsoleSession
from pimbot_console.gateway import ConsoleGateway, Screen
from pimbot_console.render import render_card


class TrackingScreen(Screen):
    """The console's Screen, also keeping every card per audience as it looks now."""

    def __init__(self) -> None:
        self.output: list[str] = []
        super().__init__(write=self.output.append)
        self.cards: list[tuple[str, Card]] = []

    def show(self, audience: str, card: Card, *, person: str | None = None) -> int:
        index = super().show(audience, card, person=person)
        self.cards.append((audience, card))
        return index

    def redraw(self, index: int, card: Card) -> None:
        super().redraw(index, card)
        self.cards[index] = (self.cards[index][0], card)


class PersonScreen(Screen):
    """One line's view of the shared screen: cards go to the shared screen, and what the
    session prints for this line is kept apart (so two people pressing at once each get
    their own answer)."""

    def __init__(self, shared: TrackingScreen) -> None:
        self.answer: list[str] = []
        super().__init__(write=self._write_both)
        self.shared = shared

    def _write_both(self, text: str) -> None:
        self.answer.append(text)
        self.shared.output.append(text)

    def show(self, audience: str, card: Card, *, person: str | None = None) -> int:
        index = self.shared.show(audience, card, person=person)
        self.answer.append(render_card(card, audience))
        return index

    def redraw(self, index: int, card: Card) -> None:
        self.shared.redraw(index, card)

    def latest_card(self, email: str) -> Card | None:
        return self.shared.latest_card(email)


class FormsSeen:
    """The PimCore the console sessions talk to, remembering the last form each person got."""

    def __init__(self, core: PimCore) -> None:
        self.core = core
        self.forms: dict[str, Form] = {}

    def _seen(self, actor: Actor, reply: Reply) -> Reply:
        if reply.form is not None:
            self.forms[actor.email] = reply.form
        return reply

    async def handle_text(self, actor: Actor, text: str) -> Reply:
        return self._seen(actor, await self.core.handle_text(actor, text))

    async def handle_action(self, actor: Actor, action: ActionId, value: str,
                            inputs: Mapping[str, str] | None = None) -> Reply:
        return self._seen(actor, await self.core.handle_action(actor, action, value, inputs))

    async def drain(self) -> None:
        await self.core.drain()

    async def remember_identity(self, platform: str, user_id: str, email: str) -> None:
        await self.core.remember_identity(platform, user_id, email)


class ConsoleDriver:
    name = "console"

    def __init__(self, core: PimCore, provider: RecordingProvider, clock: FakeClock) -> None:
        self.core = FormsSeen(core)
        self.provider = provider
        self.clock = clock
        self.screen = TrackingScreen()
        core.add_gateway(ConsoleGateway(self.screen))

    async def _line(self, who: str, line: str) -> str:
        """One line typed by ``who`` in their own console session; what it printed."""
        screen = PersonScreen(self.screen)
        await ConsoleSession(self.core, screen, who).handle_line(line)
        return "".join(screen.answer)

    async def say(self, who: str, text: str) -> str:
        return await self._line(who, text)

    def _button(self, who: str, label: str) -> tuple[int, Button]:
        card = self.screen.latest_card(who)
        assert card is not None, f"no card was shown to {who}"
        labels = [b.label for b in card.actions]
        assert label in labels, f"{who}'s latest card {card.title!r} has no {label!r}: {labels}"
        return labels.index(label) + 1, card.actions[labels.index(label)]

    async def click(self, who: str, label: str) -> str:
        number, _ = self._button(who, label)
        return await self._line(who, f"click {number}")  # the press that answers a question

    async def asks_first(self, who: str, label: str) -> str:
        _, button = self._button(who, label)
        if button.confirm is None:
            return ""
        # the core's question; the console's click is the press that answers it
        return "\n".join((button.confirm.title, button.confirm.text))

    async def submit(self, who: str, values: dict[str, str]) -> str:
        form = self.core.forms.pop(who, None)
        assert form is not None, f"no form was opened for {who}"
        given = {i.name: i.initial for i in form.inputs if i.initial} | values
        return await self._line(who, typed_form(form, given))

    def cards_for(self, who: str) -> list[SeenCard]:
        return [seen(card, who) for audience, card in self.screen.cards if audience == who]

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.core.drain()


def typed_form(form: Form, values: dict[str, str]) -> str:
    """The command a console user types for what a form asks (the console has no forms)."""
    match form.submit:
        case ActionId.SUBMIT_DENY:
            return f"deny {form.value} reason {values['reason']}"
        case ActionId.SUBMIT_APPROVE:
            comment = f" comment {values['comment']}" if values.get("comment") else ""
            return f"approve {form.value} code {values['code']}{comment}"
        case ActionId.SUBMIT_MFA_CONFIRM:
            return f"mfa confirm {values['code']}"
        case ActionId.SUBMIT_REVIEW_REMOVE:
            return f"review remove {form.value} reason {values['reason']}"
        case ActionId.SUBMIT_ACTIVATION:
            clauses = [f"activate {values.get('role') or form.value}"]
            clauses += [f"{word} {values[key]}" for word, key in
                        (("for", "duration"), ("ticket", "ticket"), ("code", "code"))
                        if values.get(key)]
            return " ".join([*clauses, f"reason {values.get('reason', '')}"]).strip()
    raise AssertionError(f"no console command for the form {form.submit}")


def seen(card: Card, who: str) -> SeenCard:
    return SeenCard(card.title, render_card(card, who), tuple(b.label for b in card.actions))


@asynccontextmanager
async def console_driver(db: Database, policy_text: str) -> AsyncIterator[ConsoleDriver]:
    policy = parse_policy(policy_text)
    clock = FakeClock()
    await apply_policy(db, policy, clock)
    provider = RecordingProvider()
    mfa = MfaService(db, SecretBox(secrets.token_bytes(32)), clock)
    core = PimCore(db, policy, {"demo": provider}, clock, mfa=mfa)
    driver = ConsoleDriver(core, provider, clock)
    await core.drain()
    yield driver
