"""What a Microsoft grant records as its ref: who (the principal's object id), how (direct or
through PIM), what was created (an assignment's id or name, a schedule request's id), and the
end the target itself enforces (``expires``, PIM's schedule), beside pimbot's own revoke."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from pimbot.providers.wire import iso_utc

# UUID5 names: the same activation always gives the same Azure assignment name, so a retried
# grant finds what the first attempt made instead of making a second assignment.
NAMESPACE = uuid.UUID("0f3a1c9e-7b2d-5e4f-9a8b-6c5d4e3f2a1b")


class Mode(StrEnum):
    DIRECT = "direct"
    PIM = "pim"  # Entra / Azure PIM schedule requests: the target ends access by itself too


def stable_name(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


@dataclass(frozen=True)
class MicrosoftRef:
    principal: str  # the user's object id
    mode: Mode
    assignment: str = ""  # a directory role assignment's id, an Azure assignment's name
    request: str = ""  # the adminAssign schedule request's id (PIM)
    expires: str | None = None  # the end PIM enforces (ISO 8601), None: no end / direct
    adopted: bool = False  # the access was there already when pimbot granted it

    def encode(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v not in ("", None, False)}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, ref: str | None) -> MicrosoftRef | None:
        """None for no ref, or one that is not ours (then revoke looks the person up)."""
        if not ref:
            return None
        try:
            data = json.loads(ref)
            return cls(principal=str(data["principal"]), mode=Mode(data.get("mode", "direct")),
                       assignment=str(data.get("assignment", "")),
                       request=str(data.get("request", "")), expires=data.get("expires"),
                       adopted=bool(data.get("adopted", False)))
        except (ValueError, KeyError, TypeError):
            return None


def iso_or_none(at: datetime | None) -> str | None:
    return iso_utc(at) if at is not None else None
