"""The small Protocols adapters and providers meet. The core depends only on these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pimbot.ui.cards import Card


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC now."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class SentMessage:
    """Where a card landed, so it can be updated later (stored as JSON in ``messages``)."""

    platform: str
    ref: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformIdentity:
    """A person's account on a chat platform as the core stored it (``remember_identity``)."""

    platform: str
    user_id: str
    email: str
    display_name: str
    conversation_ref: dict[str, Any] | None
    updated_at: datetime
    standing: str | None = None  # a ``Standing``, as the platform last said (None: never)


class Unreachable(Exception):
    """The gateway cannot reach this person or channel (reported, never skipped silently)."""


class ChatGateway(Protocol):
    """One chat platform's outbound side."""

    platform: str
    command_prefix: str  # how people type a command here ("/pim " on Slack, "" plain)

    async def can_reach(self, email: str) -> bool: ...

    async def send_to_user(self, email: str, card: Card) -> SentMessage:
        """DM a person; raise Unreachable if they cannot be found on this platform."""
        ...

    async def send_to_channel(self, channel: str, card: Card) -> SentMessage: ...

    async def update(self, sent: SentMessage, card: Card) -> None: ...

    async def delete(self, sent: SentMessage) -> None:
        """Delete a message this gateway sent, with any file sent with it (an MFA enrolment
        QR code). A message or file that is already gone counts as deleted; anything else
        raises, so the deletion job retries."""
        ...


@dataclass(frozen=True)
class GrantTarget:
    """What a provider needs to grant or revoke one role to one person."""

    activation_id: str
    email: str
    role: str
    grant: dict[str, Any]
    starts_at: datetime | None
    expires_at: datetime | None


class Provider(Protocol):
    """Where access is really granted. Every call is idempotent."""

    async def grant(self, target: GrantTarget) -> str | None:
        """Grant; return an opaque reference the provider needs for revoke (or None)."""
        ...

    async def revoke(self, target: GrantTarget, ref: str | None) -> None: ...

    async def check(self, target: GrantTarget) -> bool:
        """Does the person hold the role at the provider right now (drift detection)?"""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Extending(Protocol):
    """A provider whose target ends access by itself at the end it was sent (Entra and Azure
    PIM schedules): told when a live grant's end moves later (an extension, or a hold that
    outlasts it joining), so the target does not end the access first. Providers whose
    access lasts until pimbot revokes it have no ``extend`` (nothing is called)."""

    async def extend(self, target: GrantTarget, ref: str | None) -> str | None:
        """Make the target's own end ``target.expires_at`` (None: no end); return the grant's
        new ref, or None to keep the one it has."""
        ...


class Telemetry(Protocol):
    """Figures the core and the adapters report as they happen (the composition root turns
    them into Prometheus metrics). Every method is cheap and never raises."""

    def provider_called(self, provider: str, action: str, seconds: float, ok: bool) -> None:
        """A provider's grant / revoke / check took ``seconds``; ``ok`` False if it raised."""
        ...

    def outbound_waited(self, platform: str, seconds: float) -> None:
        """A chat platform's rate limit made an outbound call wait ``seconds`` (a 429, or
        the adapter's own pacing within the platform's published limits)."""
        ...


class NullTelemetry:
    """Reports nowhere (tests, CLI commands)."""

    def provider_called(self, provider: str, action: str, seconds: float, ok: bool) -> None:
        return None

    def outbound_waited(self, platform: str, seconds: float) -> None:
        return None
