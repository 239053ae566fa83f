"""Every command of the grammar: its syntax, a one-line meaning, details and examples.

The first example of a topic is the hint attached to that command's parse errors, so every
example here must parse (the grammar tests check it). Examples carry no ``/pim`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from pimbot.commands.scanner import show
from pimbot.commands.suggest import suggest
from pimbot.domain.errors import ErrorCode, PimError


@dataclass(frozen=True)
class Topic:
    verb: str
    syntax: tuple[str, ...]
    summary: str
    details: str
    examples: tuple[str, ...]

    @property
    def hint(self) -> str:
        return self.examples[0]


SAMPLE_REQUEST_ID = "7kq2xm4p"  # the request id the examples use (see workflow request_hints)

_TOPICS = (
    Topic(
        "help",
        ("help [COMMAND]",),
        "this overview, or details of one command",
        "Without a command, lists every command; with one, explains it with examples.",
        ("help activate", "help"),
    ),
    Topic(
        "roles",
        ("roles",),
        "your eligible and active roles",
        "Shows the roles you may activate, and those you hold now with their expiry.",
        ("roles",),
    ),
    Topic(
        "activate",
        ("activate [ROLE] [for DUR] [reason TEXT] [ticket ID] [code OTP] [at WHEN]",),
        "activate a role you are eligible for, just in time",
        "Clauses come in any order. 'reason' takes the rest of the line (but a last "
        "'code 123456', which is the code), or a quoted text after which other clauses may "
        "follow; 'code' and 6 digits anywhere else in it (or a last 'code' with a digit too "
        "few or too many) is refused, so your code is never shown to approvers. A reason "
        "is at most 500 characters. DUR is like 90s, 30m, 1h30m, 8h or 2d; "
        "OTP is the 6-digit code of your authenticator app; WHEN is like 14:30 (UTC), "
        "tomorrow 09:00 or 2027-03-31T09:00Z. Missing parts open a form where the platform "
        "has one.",
        (
            "activate prod-db-admin for 1h reason INC-42 restore the backup",
            'activate prod-db-admin for 2h code 123456 reason "fix replication" ticket INC-42',
            "activate prod-db-admin at tomorrow 09:00 for 8h reason release",
            "activate",
        ),
    ),
    Topic(
        "deactivate",
        ("deactivate ROLE",),
        "end your activation of a role now",
        "Revokes the grant at once; the request is closed as deactivated.",
        ("deactivate prod-db-admin",),
    ),
    Topic(
        "extend",
        ("extend ROLE [for DUR] [code OTP]",),
        "ask for more time on an active role",
        "Without 'for', asks for the role's default duration; approval and MFA rules apply "
        "again, and the whole activation stays within the role's maximum duration.",
        ("extend prod-db-admin for 30m", "extend prod-db-admin"),
    ),
    Topic(
        "status",
        ("status",),
        "your open requests and active roles",
        "Lists your pending, approved and active requests with their ids.",
        ("status",),
    ),
    Topic(
        "cancel",
        ("cancel REQUEST",),
        "withdraw a request that is not active yet",
        "REQUEST is the short id shown on the request, like 7kq2xm4p.",
        ("cancel 7kq2xm4p",),
    ),
    Topic(
        "pending",
        ("pending",),
        "requests waiting for your approval",
        "Lists the requests you may approve or deny, oldest first.",
        ("pending",),
    ),
    Topic(
        "approve",
        ("approve REQUEST [comment TEXT] [code OTP]",),
        "approve a request",
        "'comment' takes the rest of the line (but a last 'code 123456'), or a quoted text; "
        "'code' and 6 digits anywhere else in it is refused; at most 500 characters. "
        "Roles that demand it need your 6-digit code too.",
        ("approve 7kq2xm4p comment looks fine", "approve 7kq2xm4p code 123456"),
    ),
    Topic(
        "deny",
        ("deny REQUEST reason TEXT",),
        "deny a request, saying why",
        "The reason is shown to the requester; it takes the rest of the line.",
        ("deny 7kq2xm4p reason not during the change freeze",),
    ),
    Topic(
        "whois",
        ("whois ROLE",),
        "who holds a role now",
        "Lists the people with an active grant of the role and when it ends (admins, auditors "
        "and the role's approvers, unless the policy says whois: everyone).",
        ("whois prod-db-admin",),
    ),
    Topic(
        "mfa",
        ("mfa enroll [code OTP]", "mfa confirm CODE", "mfa status", "mfa reset USER [code OTP]"),
        "set up or check your authenticator app (reset: admins)",
        "'mfa enroll' shows a QR code to scan, 'mfa confirm' checks your first code, "
        "'mfa status' tells whether you are enrolled; admins 'mfa reset' a person who lost "
        "their device. USER is a mention or an email (a display name only lists who has it).",
        ("mfa enroll", "mfa confirm 123456", "mfa status", "mfa reset bob@example.com"),
    ),
    Topic(
        "reviews",
        ("reviews",),
        "access-review items waiting for your answer",
        "Lists the open review items you are asked to keep or remove.",
        ("reviews",),
    ),
    Topic(
        "review",
        ("review start ROLE… [for DUR]", "review keep ITEM [reason TEXT]",
         "review remove ITEM reason TEXT", "review accept"),
        "start an access review (admins); answer review items",
        "Start asks the reviewers of the roles to confirm every assignment within DUR "
        "(admins). Keep or remove answers one item of `reviews`; accept takes pimbot's "
        "recommendation on every item waiting for you.",
        ("review start prod-db-admin for 14d", "review keep 7kq2xm4p",
         "review remove 7kq2xm4p reason left the team", "review accept"),
    ),
    Topic(
        "assign",
        ("assign USER ROLE eligible|active [for DUR | until DATE]",),
        "make someone eligible for, or give them, a role (admins)",
        "USER is a mention or an email; a display name (anyone can choose theirs) changes "
        "nothing and lists the people who have it. "
        "'until 2027-03-31' ends with that day; 'for' and 'until' exclude each other.",
        (
            "assign bob@example.com prod-db-admin eligible until 2027-03-31",
            "assign bob@example.com prod-db-admin active for 8h",
        ),
    ),
    Topic(
        "unassign",
        ("unassign USER ROLE",),
        "remove someone's assignment to a role (admins)",
        "Active grants of the role end at once.",
        ("unassign bob@example.com prod-db-admin",),
    ),
    Topic(
        "audit",
        ("audit [USER|ROLE] [since WHEN]",),
        "recent audit events (admins, auditors)",
        "Filter by a person or a role, and by time: since 2026-01-01, since 7d ago.",
        ("audit prod-db-admin since 2026-01-01", "audit bob@example.com since 7d ago", "audit"),
    ),
    Topic(
        "breakglass",
        ("breakglass ROLE [for DUR] [code OTP] reason TEXT",),
        "emergency access without approval, where the role allows it",
        "Still needs your code, caps the duration, alerts every notify channel and the admins "
        "at once, and opens a follow-up review. 'reason' takes the rest of the line, so put "
        "'for' before it (or quote the reason); a last 'code 123456' is the code.",
        ("breakglass prod-db-admin for 30m code 123456 reason outage INC-42",),
    ),
)

TOPICS: dict[str, Topic] = {topic.verb: topic for topic in _TOPICS}


def unknown_command(word: str, *, in_help: bool = False) -> PimError:
    """The error for a word that is not a command (or help topic), with a did-you-mean."""
    close = suggest(word, TOPICS)
    if close is None:
        return PimError(
            ErrorCode.UNKNOWN_COMMAND, f"'{show(word)}' is not a command; 'help' lists them", "help"
        )
    return PimError(
        ErrorCode.UNKNOWN_COMMAND,
        f"'{show(word)}' is not a command. Did you mean '{close}'?",
        f"help {close}" if in_help else TOPICS[close].hint,
    )
