"""What providers raise: a failed call (retried by the caller's job) or a bad configuration."""

from __future__ import annotations


class ProviderError(Exception):
    """A grant, revoke or check did not succeed; the caller's job retries it with backoff.

    The message is one short line that names the provider and the reason, and never holds a
    secret, a token or a DSN; it may carry text from the target system (standard error, a
    database's message), so it goes to the audit log and the logs, never to chat. ``public``
    is an optional reason in pimbot's own words, with nothing from the target system, that
    chat cards may show. ``retryable`` is False when retrying cannot help (for example a role
    name that is not a valid database identifier); the caller may still retry.
    """

    def __init__(self, message: str, *, retryable: bool = True, public: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.public = public


class ProviderConfigError(Exception):
    """A provider's settings in the policy file are wrong: ``path`` is ``providers.NAME.KEY``."""

    def __init__(self, path: str, reason: str, hint: str | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.path}: {self.reason}"
        return f"{text} (try: {self.hint})" if self.hint else text
