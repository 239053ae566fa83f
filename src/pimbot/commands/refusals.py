"""The refusals of the grammar that carry what the person meant, for the workflow to hint
within the role they named (``workflow/usecases/meant_hints.py``): each keeps the verb, the
role typed and, where the message could be read repaired, the command meant."""

from __future__ import annotations

import re
from datetime import timedelta

from pimbot.commands import model as m
from pimbot.domain.durations import format_duration, probable_duration
from pimbot.domain.errors import ErrorCode, PimError

_FOR = re.compile(r"(?<!\S)for \S+")


class Misread(PimError):
    """A value the grammar could not read (``for 1y``, ``at soonish``): the hint is the
    command without it (``meant``), so it keeps the role, reason and ticket typed; the
    workflow puts in the role's own sample for what was dropped."""

    def __init__(self, code: ErrorCode, message: str, verb: str, role: str | None, hint: str,
                 meant: m.Command) -> None:
        self.verb, self.role, self.meant = verb, role, meant
        super().__init__(code, message, hint)


class RoleMissing(PimError):
    """No role where the command needs one (``deactivate``): the workflow names one of the
    person's own roles in place of the catalogue's sample (``SAMPLE_ROLE``)."""

    def __init__(self, message: str, verb: str, hint: str) -> None:
        self.verb = verb
        super().__init__(ErrorCode.PARSE, message, hint)


class UnitlessDuration(PimError):
    """A duration typed as a bare number (``activate x for 30``). The hint reads it as what
    was probably meant (``for 30m``) within a day; the workflow, which knows the role's
    maximum, hints within that, with everything else the person typed (``meant``, see
    ``workflow/usecases/meant_hints.py``)."""

    def __init__(self, message: str, amount: int, verb: str, role: str | None,
                 example: str, meant: m.Command | None = None) -> None:
        self.amount, self.verb, self.role, self.meant = amount, verb, role, meant
        reading = format_duration(probable_duration(amount, timedelta(days=1)))
        super().__init__(ErrorCode.DURATION, message,
                         _FOR.sub(f"for {reading}", example, count=1))


class CodeInText(PimError):
    """``code 123456`` inside a reason or a comment (``pimbot.domain.typed_text``): refused,
    with a hint that is the command without it (``meant``), the code clause as the
    placeholder where one was given; the workflow adds what the role needs."""

    def __init__(self, message: str, verb: str, role: str | None, hint: str,
                 meant: m.Command | None) -> None:
        self.verb, self.role, self.meant = verb, role, meant
        super().__init__(ErrorCode.PARSE, message, hint)


__all__ = ["CodeInText", "Misread", "RoleMissing", "UnitlessDuration"]
