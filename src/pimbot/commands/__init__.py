"""The chat grammar: message text to a Command, help texts, and did-you-mean suggestions."""

from pimbot.commands.grammar import VERBS, parse
from pimbot.commands.help import help_text
from pimbot.commands.model import Command, UserRef, UserRefKind
from pimbot.commands.refusals import CodeInText, Misread, RoleMissing, UnitlessDuration
from pimbot.commands.suggest import suggest
from pimbot.commands.values import parse_user

__all__ = ["VERBS", "CodeInText", "Command", "Misread", "RoleMissing", "UnitlessDuration",
           "UserRef", "UserRefKind", "help_text", "parse", "parse_user", "suggest"]
