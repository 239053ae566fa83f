"""The slice of ``pimbot.workflow.core.PimCore`` the Slack adapter calls (structural type)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pimbot.domain.admission import Caller
from pimbot.ports import ChatGateway, Clock
from pimbot.ui.cards import ActionId, Card, Reply
from pimbot.workflow.actor import Actor


class SlackCore(Protocol):
    @property
    def clock(self) -> Clock: ...

    def add_gateway(self, gateway: ChatGateway) -> None: ...

    async def handle_text(self, actor: Actor, text: str) -> Reply: ...

    async def handle_action(
        self,
        actor: Actor,
        action: ActionId,
        value: str,
        inputs: Mapping[str, str] | None = None,
    ) -> Reply: ...

    async def remember_identity(
        self,
        platform: str,
        user_id: str,
        email: str,
        display_name: str = "",
        conversation_ref: dict[str, Any] | None = None,
    ) -> None: ...

    async def home(self, actor: Actor) -> list[Card]: ...

    async def first_delivery(
        self, platform: str, key: str, kind: str, user_id: str = "", *,
        retryable: bool = True, **detail: Any
    ) -> bool: ...

    async def delivery_done(self, platform: str, key: str) -> None: ...

    async def admit(self, caller: Caller, what: str) -> Reply | None: ...
