"""Short, typeable identifiers for requests (people type them in ``approve ID``)."""

from __future__ import annotations

import secrets

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


def new_id(prefix: str = "", length: int = 6) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))
