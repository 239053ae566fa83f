"""A failed provider call, told twice: a short reason for chat, the detail for the record.

What a provider raises can hold text from the system behind it (a command's standard error,
a database's error message, an HTTP body), which is not for channels. So every failure gets
an error id; cards (channels, approvers, the requester) show only a short reason pimbot wrote
itself plus that id, and the detail goes, with the same id, to the audit log and the logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pimbot.domain.ids import new_id
from pimbot.providers.errors import ProviderError

MAX_DETAIL = 2000


@dataclass(frozen=True)
class Failure:
    error_id: str
    reason: str  # pimbot's own words, no text from the provider
    detail: str  # the exception as raised: audit log and logs only

    @property
    def shown(self) -> str:
        """What a card says: the short reason and the id that finds the detail."""
        return f"{self.reason} (error {self.error_id})"

    @property
    def recorded(self) -> str:
        """What the grant record keeps (the database, never a card)."""
        return f"{self.detail} (error {self.error_id})"


def failure_of(exc: BaseException, action: str) -> Failure:
    """``action`` is ``grant`` or ``revoke``."""
    return Failure(new_id("e"), short_reason(exc, action),
                   f"{type(exc).__name__}: {exc}"[:MAX_DETAIL])


def short_reason(exc: BaseException, action: str) -> str:
    if isinstance(exc, ProviderError):
        if exc.public:
            return exc.public
        if isinstance(exc.__cause__, TimeoutError):
            return f"the provider did not answer the {action} in time"
        if not exc.retryable:
            return f"the provider refused the {action}"
        return f"the provider could not complete the {action}"
    if isinstance(exc, TimeoutError):
        return f"the provider did not answer the {action} in time"
    return f"pimbot could not complete the {action} at the provider"
