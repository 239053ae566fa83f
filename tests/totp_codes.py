"""Codes for tests of MFA: a wrong code must be wrong at the moment it is typed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp


def wrong_code(totp: pyotp.TOTP, now: datetime) -> str:
    """Six digits that are no code pimbot accepts at ``now`` (this step or a neighbour): a
    fixed "000000" is a right code about once in 330,000 tries, and the right code moves with
    the clock."""
    near = {str(totp.at(now + timedelta(seconds=s))) for s in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)
