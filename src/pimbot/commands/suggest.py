"""Did-you-mean: the closest known word to a misspelt one (commands here, roles in workflow)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.7


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (case-insensitive), or None when nothing is close."""
    wanted = word.strip().lower()
    if not wanted:
        return None
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    if wanted in by_lower:
        return by_lower[wanted]
    matches = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=CUTOFF)
    if matches:
        return by_lower[matches[0]]
    prefixed = sorted(key for key in by_lower if len(wanted) >= 3 and key.startswith(wanted))
    return by_lower[prefixed[0]] if len(prefixed) == 1 else None
