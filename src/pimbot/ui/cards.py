"""The neutral Card / Button / Form model every adapter renders.

Text in a card is plain text; adapters escape it for their platform. Text a person supplied
(a reason, ticket, comment, decision note) is a ``UserText`` field value, and a ``Mention``'s
``name`` is the person's own display name: adapters show both so they cannot pass for
pimbot's own words (see ``pimbot.ui.quoting``). Titles, ``text`` and ``context`` are pimbot's
words only. A ``Mention`` or ``Time`` inside ``Field.value`` lets an adapter draw a person or a
time natively (``<@U…>`` / ``<!date^…>`` on Slack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "pim_approve"
    DENY = "pim_deny"
    CANCEL = "pim_cancel"
    EXTEND = "pim_extend"
    DEACTIVATE = "pim_deactivate"
    ACTIVATE = "pim_activate"  # opens the activation form for a role (value = role name)
    REVIEW_KEEP = "pim_review_keep"
    REVIEW_REMOVE = "pim_review_remove"
    REVIEW_ACCEPT = "pim_review_accept"  # accept the recommendations on every item waiting
    SUBMIT_REVIEW_REMOVE = "pim_submit_review_remove"  # a removal with its reason
    SUBMIT_ACTIVATION = "pim_submit_activation"
    SUBMIT_DENY = "pim_submit_deny"
    SUBMIT_APPROVE = "pim_submit_approve"  # approval with an MFA code
    SUBMIT_MFA_CONFIRM = "pim_submit_mfa_confirm"
    SUBMIT_EXTEND = "pim_submit_extend"  # an extension with an MFA code


class FollowUp(StrEnum):
    """The command that shows a card's reader where its subject stands now: what every
    platform hints when a press on the card cannot act (it was decided, or the button is
    gone). One wording from the core, the same on every surface."""

    PENDING = "pending"  # an approver's card: what waits for their decision
    STATUS = "status"  # the requester's card: their requests and active roles
    REVIEWS = "reviews"  # a reviewer's card: the items waiting for their answer


class ButtonStyle(StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


@dataclass(frozen=True)
class Confirm:
    """The question a button asks before it acts, for what cannot be undone (cancelling a
    request, ending access, answering many review items at once). Each adapter asks it
    natively: Slack's confirmation dialog, a card that opens under the button on Teams; the
    console's ``click N`` is the press that answers it (see ``pimbot.ui.confirmations``).
    Plain text; ``yes`` goes ahead, ``no`` leaves it be."""

    title: str  # at most 100 characters (Slack's limit)
    text: str  # at most 300
    yes: str  # at most 30
    no: str = "Keep it"  # at most 30


@dataclass(frozen=True)
class Button:
    label: str
    action: ActionId
    value: str  # an object id (and nothing the core trusts beyond that)
    style: ButtonStyle = ButtonStyle.DEFAULT
    confirm: Confirm | None = None  # asked before the button acts


@dataclass(frozen=True)
class Mention:
    email: str
    name: str = ""  # the person's display name, which they chose: user-supplied text


@dataclass(frozen=True)
class Time:
    at: datetime


@dataclass(frozen=True)
class UserText:
    """Text a person supplied, shown as a quotation: never formatted, never a link, one line."""

    text: str


FieldValue = str | Mention | Time | UserText


@dataclass(frozen=True)
class Field:
    label: str
    value: FieldValue


class Tone(StrEnum):
    INFO = "info"
    GOOD = "good"
    WARNING = "warning"
    DANGER = "danger"


@dataclass(frozen=True)
class DecidersOnly:
    """A card whose buttons are for the people who may decide ``request_id`` only.

    A platform that can show each reader their own version of a card (Teams' Adaptive Card
    ``refresh.userIds``) sends the card without its buttons, asks ``PimCore.deciders`` whom
    to list, and draws it for each of them with ``PimCore.card_for`` (``view`` redraws it).
    Elsewhere the buttons are shown to everyone, and the core refuses whoever may not decide.
    """

    request_id: str
    view: str


@dataclass(frozen=True)
class Card:
    title: str
    text: str = ""
    fields: tuple[Field, ...] = ()
    actions: tuple[Button, ...] = ()
    context: str = ""
    tone: Tone = Tone.INFO
    image_png: bytes | None = None  # e.g. an MFA enrolment QR code
    image_alt: str = ""
    image_text: str = ""  # the same image for text-only surfaces (a terminal QR code)
    # The text holds a secret (an MFA key): never in a notification preview, which outlives
    # the message (the platform's push and desktop previews cannot be deleted).
    secret: bool = False
    deciders_only: DecidersOnly | None = None  # the buttons are for the deciders alone
    follow_up: FollowUp | None = None  # the command to hint once its buttons cannot act

    @property
    def fallback_text(self) -> str:
        """Plain one-paragraph text for notifications and clients that cannot draw cards."""
        parts = [self.title]
        if self.text and not self.secret:
            parts.append(self.text)
        return " — ".join(parts)


class InputKind(StrEnum):
    TEXT = "text"
    MULTILINE = "multiline"
    SELECT = "select"
    CODE = "code"  # a 6-digit one-time code


@dataclass(frozen=True)
class Choice:
    label: str
    value: str


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    kind: InputKind = InputKind.TEXT
    required: bool = True
    initial: str = ""
    choices: tuple[Choice, ...] = ()
    placeholder: str = ""
    max_length: int = 3000


@dataclass(frozen=True)
class Form:
    title: str
    submit: ActionId
    submit_label: str = "Submit"
    inputs: tuple[Input, ...] = ()
    value: str = ""  # carried back on submit (an object id)
    text: str = ""


@dataclass(frozen=True)
class Reply:
    """What the core answers to the person who acted (ephemeral where the platform allows)."""

    text: str = ""
    card: Card | None = None
    form: Form | None = None
    field_errors: dict[str, str] = field(default_factory=dict)
    ok: bool = True
    # A command in the grammar to try next, without a prefix ("pending", "deny 7kq2xm4p reason
    # …"): each adapter writes it in its own words (``/pim …`` on Slack, plain on the console).
    hint: str = ""
    subject: str = ""  # the id of the request / review item / review the reply is about

    def said(self, prefix: str) -> str:
        """The reply's text with its hint, written with the platform's command ``prefix``."""
        if not self.hint:
            return self.text
        tried = f"try: {prefix}{self.hint}"
        return f"{self.text} — {tried}" if self.text else tried
