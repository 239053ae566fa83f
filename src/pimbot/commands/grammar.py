"""The chat grammar: the text of one message to a Command (DESIGN.md, "The chat grammar").

``parse`` raises only ``PimError`` (PARSE, DURATION or UNKNOWN_COMMAND) with a one-line
message saying what is wrong and, as the hint, an example line of the same command.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pimbot.commands import model as m
from pimbot.commands.catalog import TOPICS, unknown_command
from pimbot.commands.reader import CLAUSE_WORDS, SAMPLE_ROLE, Clause, Reader
from pimbot.commands.refusals import CodeInText, Misread, RoleMissing, UnitlessDuration
from pimbot.commands.scanner import GrammarError, Scanner, clean, show
from pimbot.commands.suggest import suggest
from pimbot.commands.values import read_user, trailing_code
from pimbot.commands.writer import command_line
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.domain.model import AssignmentType

_PREFIXES = frozenset({"pim", "/pim"})
_HELP_WORDS = frozenset({"?", "-h", "--help", "help"})
_SUBCOMMANDS = {
    "mfa": ("enroll", "confirm", "status", "reset"),
    "review": ("start", "keep", "remove", "accept"),
}
_ACTIVATE = frozenset({Clause.FOR, Clause.REASON, Clause.TICKET, Clause.CODE, Clause.AT})
_APPROVE = frozenset({Clause.COMMENT, Clause.CODE})
_BREAKGLASS = frozenset({Clause.REASON, Clause.FOR, Clause.CODE})
_ASSIGN = frozenset({Clause.FOR, Clause.UNTIL})
_PLAIN_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def parse(text: str) -> m.Command:
    """One chat message (an optional ``pim`` / ``/pim`` prefix allowed) as a Command."""
    reading = _Reading(Scanner(clean(text)))
    try:
        return reading.command()
    except GrammarError as problem:
        code = ErrorCode.DURATION if problem.duration else ErrorCode.PARSE
        reader = reading.reader
        said = reader.verb if reader is not None else reading.topic  # "review remove", say
        matching = [e for e in TOPICS[reading.topic].examples if e.startswith(said)]
        hint = _with_role(matching[0] if matching else TOPICS[reading.topic].hint, reader)
        role = reader.role_given if reader is not None else None
        meant = _meant(problem)
        written = command_line(meant) if meant is not None else None
        if problem.unitless is not None:
            raise UnitlessDuration(problem.message, problem.unitless, said, role,
                                   written or hint, meant) from None
        if problem.code_in_text:
            raise CodeInText(problem.message, said, role, written or hint, meant) from None
        if problem.role_missing:
            raise RoleMissing(problem.message, said, hint) from None
        if meant is not None:  # a value it could not read: the hint keeps the rest typed
            raise Misread(code, problem.message, said, role, written or hint, meant) from None
        raise PimError(code, problem.message, hint) from None
    except PimError as unknown:
        if unknown.code is not ErrorCode.UNKNOWN_COMMAND or reading.reader is not None:
            raise
        raise _with_words_typed(unknown, reading.scanner.text) from None


class _Reading:
    """One message being read: the verb (``topic``) and its reader once they are known."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.topic = "help"
        self.reader: Reader | None = None

    def command(self) -> m.Command:
        verb = _read_verb(self.scanner)
        if verb is None:
            return m.Help()
        if verb not in TOPICS:
            raise unknown_command(verb)
        self.topic = verb
        if verb != "help" and _asks_for_help(self.scanner):
            return m.Help(verb)
        self.reader = Reader(self.scanner, verb)
        return _PARSERS[verb](self.reader)


_REPAIRS = 3  # problems repaired, one after another, to read what the person meant


def _meant(problem: GrammarError) -> m.Command | None:
    """The command the person meant, when the problem says how to read it (the duration
    with its unit, the reason without a code) and the repaired message then reads."""
    for _ in range(_REPAIRS):
        if problem.repaired is None:
            return None
        try:
            return _Reading(Scanner(problem.repaired)).command()
        except GrammarError as again:
            problem = again
        except PimError:
            return None
    return None


def _with_words_typed(error: PimError, line: str) -> PimError:
    """A misspelt verb's did-you-mean hinted with the rest of what was typed (``activat
    staging-deploy for 30m reason x`` → ``activate staging-deploy for 30m reason x``), when
    the line reads as that command; its code, if any, as the placeholder."""
    scanner = Scanner(line)
    first = scanner.next()
    if first is not None and first.word in _PREFIXES:
        first = scanner.next()
    if first is None or not error.hint:
        return error
    verb = first.text.strip().lower()
    close = suggest(verb, TOPICS)
    if close is None or close == verb or not error.hint.startswith(close):
        return error
    rest = line[first.end:].strip()
    try:
        command = _Reading(Scanner(f"{close} {rest}")).command()
    except (GrammarError, PimError):
        return error
    written = command_line(command)
    if written is None:
        if getattr(command, "code", None):
            return error  # a code is never written back
        written = f"{close} {rest}".strip()
    return PimError(error.code, error.message, written, audit=error.audit)


def _with_role(example: str, reader: Reader | None) -> str:
    """The example with the role the person typed in place of the catalogue's sample role
    (a bad duration after ``activate staging-deploy`` hints at staging-deploy), when that
    role is a plain word the hint can carry."""
    role = reader.role_given if reader is not None else None
    if role is None or not _PLAIN_ROLE.fullmatch(role):
        return example
    return re.sub(rf"(?<![\w-]){re.escape(SAMPLE_ROLE)}(?![\w-])", role, example)


def _read_verb(scanner: Scanner) -> str | None:
    token = scanner.next()
    if token is not None and token.word in _PREFIXES:
        token = scanner.next()
    if token is None:
        return None
    return token.text.strip().lower()


def _asks_for_help(scanner: Scanner) -> bool:
    token = scanner.peek()
    if token is None or token.word not in _HELP_WORDS:
        return False
    scanner.next()
    if scanner.at_end():
        return True
    scanner.pos = token.start
    return False


def _subcommand(reader: Reader) -> str:
    choices = _SUBCOMMANDS[reader.verb]
    token = reader.scanner.next()
    if token is None:
        raise GrammarError(f"'{reader.verb}' needs one of: {', '.join(choices)}")
    word = token.text.lower()
    if word in choices:
        reader.verb = f"{reader.verb} {word}"
        reader.after = f"after '{reader.verb}'"
        return word
    close = suggest(word, choices)
    message = f"'{reader.verb} {show(word)}' is not a command"
    if close is None:
        message += f"; use {reader.verb} {' | '.join(choices)}"
        raise PimError(ErrorCode.UNKNOWN_COMMAND, message, TOPICS[reader.verb].hint)
    example = next(
        e for e in TOPICS[reader.verb].examples if e.startswith(f"{reader.verb} {close}")
    )
    raise PimError(
        ErrorCode.UNKNOWN_COMMAND, f"{message}. Did you mean '{reader.verb} {close}'?", example
    )


def _help(reader: Reader) -> m.Help:
    token = reader.scanner.next()
    if token is None:
        return m.Help()
    topic = token.text.strip().lower()
    if topic in _PREFIXES:
        return _help(reader)
    if topic not in TOPICS:
        raise unknown_command(topic, in_help=True)
    following = reader.scanner.peek()
    if following is not None and following.text.lower() in _SUBCOMMANDS.get(topic, ()):
        reader.scanner.next()
    reader.after = f"after 'help {topic}'"
    reader.end()
    return m.Help(topic)


def _no_arguments(command: type[m.Roles | m.Status | m.Pending | m.Reviews]) -> _Parser:
    def read(reader: Reader) -> m.Command:
        reader.end()
        return command()

    return read


def _activate(reader: Reader) -> m.Activate:
    role = reader.optional_role(_ACTIVATE)
    found = reader.clauses(_ACTIVATE)
    return m.Activate(role, found.duration, found.reason, found.ticket, found.code, found.at)


def _deactivate(reader: Reader) -> m.Deactivate:
    role = reader.role()
    reader.end()
    return m.Deactivate(role)


def _extend(reader: Reader) -> m.Extend:
    role = reader.role()
    found = reader.clauses(frozenset({Clause.FOR, Clause.CODE}))
    return m.Extend(role, found.duration, found.code)


def _cancel(reader: Reader) -> m.Cancel:
    request_id = reader.request_id()
    reader.end()
    return m.Cancel(request_id)


def _approve(reader: Reader) -> m.Approve:
    request_id = reader.request_id()
    found = reader.clauses(_APPROVE)
    return m.Approve(request_id, found.comment, found.code)


def _deny(reader: Reader) -> m.Deny:
    request_id = reader.request_id()
    reason = reader.clauses(frozenset({Clause.REASON})).reason
    if reason is None:
        raise GrammarError("'deny' needs a reason: add 'reason' and why")
    return m.Deny(request_id, reason)


def _whois(reader: Reader) -> m.Whois:
    role = reader.role()
    reader.end()
    return m.Whois(role)


def _mfa(reader: Reader) -> m.Command:
    match _subcommand(reader):
        case "confirm":
            code = reader.code("'mfa confirm'")
            reader.end()
            return m.MfaConfirm(code)
        case "reset":
            text = reader.scanner.free_text(("code",))
            admin_code = reader.clauses(frozenset({Clause.CODE})).code
            if admin_code is None and (split := trailing_code(text)) is not None:
                text, admin_code = split
            if not text:
                raise GrammarError("'mfa reset' needs a person: a mention, an email or a name")
            return m.MfaReset(read_user(text), admin_code)
        case "enroll":
            current = reader.clauses(frozenset({Clause.CODE})).code
            return m.MfaEnroll(current)
        case _:
            reader.end()
            return m.MfaStatus()


def _review(reader: Reader) -> m.Command:
    match _subcommand(reader):
        case "keep":
            item_id = reader.request_id("review item id")
            return m.ReviewKeep(item_id, reader.clauses(frozenset({Clause.REASON})).reason)
        case "remove":
            item_id = reader.request_id("review item id")
            reason = reader.clauses(frozenset({Clause.REASON})).reason
            if reason is None:
                raise GrammarError("'review remove' needs a reason: add 'reason' and why")
            return m.ReviewRemove(item_id, reason)
        case "accept":
            reader.end()
            return m.ReviewAccept()
    roles = [reader.role()]
    while (token := reader.scanner.peek()) is not None and token.word not in CLAUSE_WORDS:
        roles.append(reader.role())
    duration = reader.clauses(frozenset({Clause.FOR})).duration
    return m.ReviewStart(tuple(roles), duration)


def _assign(reader: Reader) -> m.Assign:
    user = reader.user()
    role = reader.role()
    kind = _assignment_type(reader)
    found = reader.clauses(_ASSIGN)
    if found.duration is not None and found.until is not None:
        raise GrammarError("give either 'for' or 'until', not both")
    return m.Assign(user, role, kind, found.duration, found.until)


def _assignment_type(reader: Reader) -> AssignmentType:
    choices = [kind.value for kind in AssignmentType]
    token = reader.scanner.next()
    if token is None or token.word in CLAUSE_WORDS:
        where = "" if token is None else f" before '{token.word}'"
        raise GrammarError(f"'assign' needs eligible or active after the role{where}")
    if token.word in choices:
        reader.after = f"after '{token.word}'"
        return AssignmentType(token.word)
    close = suggest(token.text, choices)
    tail = f". Did you mean '{close}'?" if close else "; use eligible or active"
    raise GrammarError(f"unknown word '{show(token.text)}' after the role{tail}")


def _unassign(reader: Reader) -> m.Unassign:
    user = reader.user()
    role = reader.role()
    reader.end()
    return m.Unassign(user, role)


def _audit(reader: Reader) -> m.Audit:
    subject: str | None = None
    token = reader.scanner.peek()
    if token is not None and token.word != Clause.SINCE:
        reader.scanner.next()
        subject = str(read_user(token.text))
        reader.after = "after the person or role"
    return m.Audit(subject, reader.clauses(frozenset({Clause.SINCE})).since)


def _breakglass(reader: Reader) -> m.Breakglass:
    role = reader.role()
    found = reader.clauses(_BREAKGLASS)
    if found.reason is None:
        raise GrammarError("'breakglass' needs a reason: add 'reason' and what is on fire")
    return m.Breakglass(role, found.reason, found.duration, found.code)


_Parser = Callable[[Reader], m.Command]
_PARSERS: dict[str, _Parser] = {
    "help": _help,
    "roles": _no_arguments(m.Roles),
    "activate": _activate,
    "deactivate": _deactivate,
    "extend": _extend,
    "status": _no_arguments(m.Status),
    "cancel": _cancel,
    "pending": _no_arguments(m.Pending),
    "approve": _approve,
    "deny": _deny,
    "whois": _whois,
    "mfa": _mfa,
    "reviews": _no_arguments(m.Reviews),
    "review": _review,
    "assign": _assign,
    "unassign": _unassign,
    "audit": _audit,
    "breakglass": _breakglass,
}


VERBS: frozenset[str] = frozenset(_PARSERS)  # the words a command can start with
