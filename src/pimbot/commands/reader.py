"""Reads the parts of one command: positional words, then clauses in any order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pimbot.commands import values
from pimbot.commands.model import UserRef
from pimbot.commands.scanner import GrammarError, Scanner, Token, show
from pimbot.commands.suggest import suggest
from pimbot.domain.durations import FORMS, format_duration, probable_duration
from pimbot.domain.examples import SAMPLE_CODE
from pimbot.domain.typed_text import REPLACEMENT, code_in, code_refused, too_long


class Clause(StrEnum):
    FOR = "for"
    REASON = "reason"
    TICKET = "ticket"
    CODE = "code"
    AT = "at"
    COMMENT = "comment"
    UNTIL = "until"
    SINCE = "since"


CLAUSE_WORDS = frozenset(Clause)
_VALUED = frozenset({Clause.FOR, Clause.AT, Clause.TICKET})  # one value each: dropped to repair
SAMPLE_ROLE = "prod-db-admin"  # the role the catalogue's examples use
_FREE_TEXT = {
    Clause.REASON: "a text, like 'reason restore the backup'",
    Clause.COMMENT: "a text, like 'comment looks fine'",
}


@dataclass
class ClauseValues:
    duration: timedelta | None = None
    reason: str | None = None
    ticket: str | None = None
    code: str | None = None
    at: str | None = None
    comment: str | None = None
    until: str | None = None
    since: str | None = None


class Reader:
    """One command's words; ``after`` names the last part read, for error messages."""

    def __init__(self, scanner: Scanner, verb: str) -> None:
        self.scanner = scanner
        self.verb = verb
        self.after = f"after '{verb}'"
        self.role_given: str | None = None  # the role as typed, for the hint of an error

    def _value(self, what: str, *, role: bool = False) -> Token:
        token = self.scanner.peek()
        if token is None:
            raise GrammarError(f"'{self.verb}' needs {what}", role_missing=role)
        if token.word in CLAUSE_WORDS:
            raise GrammarError(f"'{self.verb}' needs {what} before '{token.word}'",
                               role_missing=role)
        self.scanner.next()
        if REPLACEMENT in token.text:
            # Control characters (NUL, BEL, terminal escapes) become U+FFFD as the message
            # is kept (``scanner.clean``); where a name goes they are a slip, never a name.
            raise GrammarError(f"'{self.verb}' got control characters (shown as "
                               f"{REPLACEMENT}) where {what.split(',')[0]} goes; type it "
                               "again without them")
        return token

    def role(self) -> str:
        role = self._value(f"a role, like {SAMPLE_ROLE}", role=True).text.strip()
        if not role:
            raise GrammarError("the role name is empty")
        self.after = "after the role"
        self.role_given = role
        return role

    def optional_role(self, allowed: frozenset[Clause]) -> str | None:
        token = self.scanner.peek()
        if token is None or token.word in allowed:
            return None
        return self.role()

    def request_id(self, what: str = "request id") -> str:
        """A request id (``what="review item id"`` for ``review keep|remove``)."""
        request_id = values.check_request_id(self._value(f"a {what}, like 7kq2xm4p").text,
                                             what)
        self.after = f"after the {what}"
        return request_id

    def user(self) -> UserRef:
        user = values.read_user(self._value("a person: a mention, an email or a name").text)
        self.after = "after the person"
        return user

    def code(self, what: str = "'code'") -> str:
        token = self.scanner.next()
        if token is None or token.word in CLAUSE_WORDS:
            raise GrammarError(f"{what} needs the 6-digit code from your authenticator app")
        text = token.text
        following = self.scanner.peek()
        if values.is_code_half(text) and following and values.is_code_half(following.text):
            self.scanner.next()
            text += following.text
        if not values.is_code(text):
            raise GrammarError(f"{what} needs exactly 6 digits, like 123456")
        self.after = "after the code"
        return text

    def end(self) -> None:
        token = self.scanner.peek()
        if token is not None:
            raise self._unknown(token, frozenset())

    def clauses(self, allowed: frozenset[Clause]) -> ClauseValues:
        found = ClauseValues()
        seen: set[Clause] = set()
        while (token := self.scanner.next()) is not None:
            if token.word not in allowed:
                raise self._unknown(token, allowed)
            clause = Clause(token.word)
            if clause in seen:
                raise GrammarError(f"'{clause}' is given twice")
            seen.add(clause)
            try:
                self._read_clause(clause, found, allowed)
            except GrammarError as problem:
                if clause in _VALUED and problem.repaired is None and not problem.unitless:
                    # What was meant is the message without the clause it could not read
                    # (``for 1y``, ``at soonish``): the hint keeps everything else typed.
                    line = self.scanner.text
                    problem.repaired = (f"{line[:token.start].rstrip()} "
                                        f"{line[self.scanner.pos:].lstrip()}").strip()
                raise
        return found

    def _read_clause(self, clause: Clause, found: ClauseValues, allowed: frozenset[Clause]) -> None:
        match clause:
            case Clause.FOR:
                found.duration = self._duration()
            case Clause.REASON | Clause.COMMENT:
                start = self.scanner.pos
                text, quoted = self.scanner.free_text_as_typed(allowed)
                split = None if quoted or found.code is not None or Clause.CODE not in allowed \
                    else values.trailing_code(text)
                if split is not None:  # "reason restore code 123456": the code clause last
                    text, found.code = split
                if code_in(text) is not None:
                    raise self._code_in_text(clause, start)
                if Clause.CODE in allowed and not quoted and found.code is None:
                    self._check_code_digits(text, start)
                if not text:
                    raise GrammarError(f"'{clause}' needs {_FREE_TEXT[clause]}")
                if (long := too_long(str(clause), text)) is not None:
                    raise GrammarError(long)
                setattr(found, clause.value, text)
            case Clause.TICKET:
                found.ticket = self._ticket()
            case Clause.CODE:
                found.code = self.code()
            case Clause.AT | Clause.SINCE | Clause.UNTIL:
                setattr(found, clause.value, self._when(clause))

    def _code_in_text(self, clause: Clause, start: int) -> GrammarError:
        """A code inside a text is refused (``pimbot.domain.typed_text``), its digits never
        echoed; the message without it is what the person meant, for the hint."""
        line = self.scanner.text
        span = code_in(line[start:])
        assert span is not None  # the text read from ``start`` holds it
        before, after = line[: start + span[0]].rstrip(), line[start + span[1] :].lstrip()
        return GrammarError(code_refused(str(clause)), code_in_text=True,
                            repaired=f"{before} {after}".strip())

    def _check_code_digits(self, text: str, start: int) -> None:
        """A text ending in ``code`` and a number of the wrong length (``code 12345``) is a
        mistyped code clause: refused, so the number reaches no card, and hinted as the
        message with the code clause as its placeholder (the digits never echoed)."""
        mistyped = values.mistyped_code(text)
        if mistyped is None:
            return
        before, digits = mistyped
        line = self.scanner.text
        repaired = f"{line[:start]} {before} code {SAMPLE_CODE}".strip() if before else None
        raise GrammarError(f"a code has 6 digits (you typed {digits}); give the code from "
                           "your authenticator app after 'code'", code_in_text=True,
                           repaired=repaired)

    def _ticket(self) -> str:
        token = self.scanner.next()
        if token is None or token.word in CLAUSE_WORDS or not token.text.strip():
            raise GrammarError("'ticket' needs a ticket id, like INC-42")
        self.after = f"after 'ticket {show(token.text, 20)}'"
        return token.text.strip()

    def _duration(self) -> timedelta:
        token = self.scanner.next()
        if token is None or token.word in CLAUSE_WORDS:
            raise GrammarError("'for' needs a duration, like 1h30m", duration=True)
        text = token.text
        unit = self.scanner.peek()
        if values.is_number(text) and unit and unit.word in values.UNIT_OF_WORD:
            self.scanner.next()
            text += values.UNIT_OF_WORD[unit.word]
        elif values.is_number(text) and int(text) > 0:
            line, meant = self.scanner.text, probable_duration(int(text), timedelta(days=1))
            raise GrammarError(
                f"'{text}' has no unit; durations are written {FORMS}", unitless=int(text),
                repaired=f"{line[: token.start]}{format_duration(meant)}{line[token.end :]}")
        self.after = f"after 'for {show(text, 20)}'"
        return values.duration(text)

    def _when(self, clause: Clause) -> str:
        what = "a date, like 2027-03-31" if clause is Clause.UNTIL else "a time, like 14:30"
        first = self.scanner.next()
        if first is None or first.word in CLAUSE_WORDS:
            raise GrammarError(f"'{clause}' needs {what}")
        text = first.text
        second = self.scanner.peek()
        if (
            not first.quoted
            and second is not None
            and second.word not in CLAUSE_WORDS
            and values.starts_two_word_time(first.text, second.text)
        ):
            self.scanner.next()
            text = f"{first.text} {second.text}"
        self.after = f"after '{clause} {show(text, 30)}'"
        return values.check_when(text, until=clause is Clause.UNTIL)

    def _unknown(self, token: Token, allowed: frozenset[Clause]) -> GrammarError:
        word = show(token.text)
        if token.word in CLAUSE_WORDS:
            return GrammarError(f"'{self.verb}' does not take '{token.word}'")
        if values.is_code(token.text) and Clause.CODE in allowed:
            return GrammarError(f"a 6-digit code {self.after} needs 'code' before it")
        if Clause.FOR in allowed and values.looks_like_duration(token.text):
            return GrammarError(f"unknown word '{word}' {self.after}; write 'for {word}'")
        close = suggest(token.text, allowed) if not token.quoted and allowed else None
        if close is not None:
            return GrammarError(f"unknown word '{word}' {self.after}. Did you mean '{close}'?")
        return GrammarError(f"unknown word '{word}' {self.after}")
