"""The slice of ``pimbot.workflow.core.PimCore`` the Teams adapter calls (structural type)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pimbot.domain.admission import Caller
from pimbot.ports import ChatGateway, Clock, PlatformIdentity
from pimbot.store.database import Database
from pimbot.ui.cards import ActionId, Card, Reply
from pimbot.workflow.actor import Actor


class TeamsCore(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def db(self) -> Database: ...

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
        *,
        ref_if_unset: dict[str, Any] | None = None,
        standing: str | None = None,
    ) -> None: ...

    async def identity(self, platform: str, user_id: str) -> PlatformIdentity | None: ...

    async def identity_by_email(self, platform: str, email: str) -> PlatformIdentity | None: ...

    async def first_delivery(
        self, platform: str, key: str, kind: str, user_id: str = "", *,
        retryable: bool = True, **detail: Any
    ) -> bool: ...

    async def delivery_done(self, platform: str, key: str) -> None: ...

    async def admit(self, caller: Caller, what: str) -> Reply | None: ...

    async def deciders(self, request_id: str) -> tuple[str, ...]: ...

    async def card_for(self, actor: Actor, request_id: str, view: str) -> Card: ...

    async def forget_reference(self, platform: str, user_id: str,
                               conversation_id: str = "") -> bool: ...
