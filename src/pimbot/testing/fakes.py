"""FakeClock, RecordingProvider and RecordingChatGateway: in-memory stand-ins for the ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pimbot.ports import GrantTarget, SentMessage, Unreachable
from pimbot.ui.cards import Card


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, value: datetime) -> None:
        self._now = value


@dataclass
class ProviderCall:
    action: str
    email: str
    role: str
    activation_id: str


class RecordingProvider:
    """Records every call; ``held`` is what the person would hold at a real provider."""

    def __init__(self, *, fail_grants: int = 0, fail_revokes: int = 0) -> None:
        self.calls: list[ProviderCall] = []
        self.held: set[tuple[str, str]] = set()
        self.fail_grants = fail_grants
        self.fail_revokes = fail_revokes

    async def grant(self, target: GrantTarget) -> str | None:
        self.calls.append(ProviderCall("grant", target.email, target.role, target.activation_id))
        if self.fail_grants > 0:
            self.fail_grants -= 1
            raise RuntimeError("provider unavailable")
        self.held.add((target.email, target.role))
        return f"ref-{target.activation_id}"

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        self.calls.append(ProviderCall("revoke", target.email, target.role, target.activation_id))
        if self.fail_revokes > 0:
            self.fail_revokes -= 1
            raise RuntimeError("provider unavailable")
        self.held.discard((target.email, target.role))

    async def check(self, target: GrantTarget) -> bool:
        self.calls.append(ProviderCall("check", target.email, target.role, target.activation_id))
        return (target.email, target.role) in self.held

    async def close(self) -> None:
        return None

    def actions(self, action: str) -> list[ProviderCall]:
        return [c for c in self.calls if c.action == action]


@dataclass
class Delivery:
    audience: str  # user:EMAIL or channel:NAME
    card: Card
    ref: SentMessage
    updates: list[Card] = field(default_factory=list)

    @property
    def latest(self) -> Card:
        return self.updates[-1] if self.updates else self.card


class RecordingChatGateway:
    """An in-memory chat platform: every card sent and every update, per audience."""

    def __init__(self, platform: str = "console", unreachable: set[str] | None = None) -> None:
        self.platform = platform
        self.deliveries: list[Delivery] = []
        self.unreachable = unreachable or set()

    async def can_reach(self, email: str) -> bool:
        return email not in self.unreachable

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        if email in self.unreachable:
            raise Unreachable(f"{email} is not on {self.platform}")
        return self._record(f"user:{email}", card)

    async def send_to_channel(self, channel: str, card: Card) -> SentMessage:
        return self._record(f"channel:{channel}", card)

    async def update(self, sent: SentMessage, card: Card) -> None:
        index = int(sent.ref["index"])
        self.deliveries[index].updates.append(card)

    def _record(self, audience: str, card: Card) -> SentMessage:
        ref = SentMessage(self.platform, {"index": str(len(self.deliveries))})
        self.deliveries.append(Delivery(audience, card, ref))
        return ref

    def to(self, audience: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.audience == audience]
