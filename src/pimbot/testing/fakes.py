"""FakeClock, RecordingProvider and RecordingChatGateway: in-memory stand-ins for the ports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    grant: dict[str, Any] = field(default_factory=dict)


class RecordingProvider:
    """Records every call, and answers like both kinds of receiving system at once.

    ``held`` is a *membership* system: (email, role) is in it from a grant to a revoke.
    ``credentials`` is a *per-activation credential* system: a grant mints one credential
    for its activation id (returned as the ref), and only a revoke naming that activation id
    and ref removes it. ``granted`` / ``revoked`` count successful calls by (activation id,
    ref), so a test can check that each grant was matched by exactly one revoke.
    """

    def __init__(self, *, fail_grants: int = 0, fail_revokes: int = 0) -> None:
        self.calls: list[ProviderCall] = []
        self.held: set[tuple[str, str]] = set()
        self.credentials: dict[str, tuple[str, str, str]] = {}  # ref → (id, email, role)
        self.granted: Counter[tuple[str, str]] = Counter()
        self.revoked: Counter[tuple[str, str]] = Counter()
        self.fail_grants = fail_grants
        self.fail_revokes = fail_revokes

    async def grant(self, target: GrantTarget) -> str | None:
        self.calls.append(ProviderCall("grant", target.email, target.role, target.activation_id,
                                       dict(target.grant)))
        if self.fail_grants > 0:
            self.fail_grants -= 1
            raise RuntimeError("provider unavailable")
        self.held.add((target.email, target.role))
        ref = f"ref-{target.activation_id}"
        self.credentials[ref] = (target.activation_id, target.email, target.role)
        self.granted[(target.activation_id, ref)] += 1
        return ref

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        self.calls.append(ProviderCall("revoke", target.email, target.role, target.activation_id,
                                       dict(target.grant)))
        if self.fail_revokes > 0:
            self.fail_revokes -= 1
            raise RuntimeError("provider unavailable")
        self.held.discard((target.email, target.role))
        if ref is not None and self.credentials.get(ref, ("",))[0] == target.activation_id:
            del self.credentials[ref]
        self.revoked[(target.activation_id, ref or "")] += 1

    def unmatched(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(activation id, ref) whose successful grants are not matched by exactly one
        successful revoke (several grants of one activation id are one credential: the calls
        are idempotent). A revoke after a grant that failed (no ref) is a harmless clean-up."""
        keys = set(self.granted) | set(self.revoked)
        return {k: (self.granted[k], self.revoked[k]) for k in keys
                if (self.granted[k] > 0 and self.revoked[k] != 1) or self.revoked[k] > 1}

    async def check(self, target: GrantTarget) -> bool:
        self.calls.append(ProviderCall("check", target.email, target.role, target.activation_id,
                                       dict(target.grant)))
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
    deleted: bool = False

    @property
    def latest(self) -> Card:
        return self.updates[-1] if self.updates else self.card


class RecordingChatGateway:
    """An in-memory chat platform: every card sent, updated and deleted, per audience.

    ``fail_deletes`` makes that many ``delete`` calls raise (a platform outage)."""

    def __init__(self, platform: str = "console", unreachable: set[str] | None = None,
                 *, fail_deletes: int = 0) -> None:
        self.platform = platform
        self.deliveries: list[Delivery] = []
        self.unreachable = unreachable or set()
        self.fail_deletes = fail_deletes
        self.delete_calls = 0

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

    async def delete(self, sent: SentMessage) -> None:
        self.delete_calls += 1
        if self.fail_deletes > 0:
            self.fail_deletes -= 1
            raise RuntimeError("chat platform unavailable")
        self.deliveries[int(sent.ref["index"])].deleted = True

    def _record(self, audience: str, card: Card) -> SentMessage:
        ref = SentMessage(self.platform, {"index": str(len(self.deliveries))})
        self.deliveries.append(Delivery(audience, card, ref))
        return ref

    def to(self, audience: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.audience == audience]

    def visible_to(self, audience: str) -> list[Delivery]:
        """What the audience can still read: their messages that were not deleted."""
        return [d for d in self.to(audience) if not d.deleted]
