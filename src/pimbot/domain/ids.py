"""Short, typeable identifiers for requests (people type them in ``approve ID``).

A request (and a review item) id is ``REQUEST_ID_LENGTH`` characters of ``ALPHABET`` (no
0/1/i/l/o to misread): 31^8 ≈ 8.5e11 ids, so 10,000 requests collide with a chance of about
6e-5 (6 characters, ≈ 8.9e8 ids, made that about 5%, and a benchmark of 10,000 hit it). The
grammar takes any id of 1 to 32 such characters, so the 6-character ids of older requests
are still typed as before."""

from __future__ import annotations

import secrets

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


REQUEST_ID_LENGTH = 8


def new_id(prefix: str = "", length: int = 6) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_request_id() -> str:
    """The id of a new request or review item (what people type after approve, cancel…)."""
    return new_id(length=REQUEST_ID_LENGTH)
