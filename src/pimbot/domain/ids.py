"""Short, typeable identifiers for requests (people type them in ``approve ID``).

A request (and a review item) id is ``REQUEST_ID_LENGTH`` characters of ``ALPHABET`` (no
0/1/i/l/o to misread): 31^8 ≈ 8.5e11 ids, so 10,000 requests collide with a chance of about
6e-5 (6 characters, ≈ 8.9e8 ids, made that about 5%, and a benchmark of 10,000 hit it). The
grammar takes any id of 1 to 32 such characters, so the 6-character ids of older requests
are still typed as before.

Rows nobody types (assignments, grant records, review campaigns) have ``ROW_ID_LENGTH``
characters after their prefix: 31^12 ≈ 7.9e17 ids, so even 1,000,000 of them collide with a
chance of about 6e-7. With 6 characters, applying a policy of 10,000 assignments failed on a
duplicate ``assignments.id`` about one time in twenty (a benchmark hit it a third of its runs
across repeated seedings), and a burst of 10,000 grants risked the same."""

from __future__ import annotations

import secrets

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


REQUEST_ID_LENGTH = 8
ROW_ID_LENGTH = 12


_BASE = len(ALPHABET)


def new_id(prefix: str = "", length: int = 6) -> str:
    """``length`` characters of ``ALPHABET``, every id equally likely: one draw of the whole
    space from the system's randomness (``secrets.choice`` per character asked it once a
    character, 47 ``getrandom`` calls for a request's id), written in base 31."""
    number = secrets.randbelow(_BASE ** length)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, _BASE)
        chars.append(ALPHABET[digit])
    return prefix + "".join(chars)


def new_request_id() -> str:
    """The id of a new request or review item (what people type after approve, cancel…)."""
    return new_id(length=REQUEST_ID_LENGTH)


def new_row_id(prefix: str) -> str:
    """The primary key of a row nobody types (``prefix`` says what it is: ``a``, ``g``, ``c``)."""
    return new_id(prefix, length=ROW_ID_LENGTH)
