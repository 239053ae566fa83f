"""Pure view builders: a request snapshot in, a neutral Card out.

Every card about a request is drawn from the database through these functions, both when it
is first sent and whenever it is redrawn, so every copy shows the same state. What people
typed (reason, ticket, decision note) goes into ``UserText`` fields, never into a card's title
or text, so no adapter can show it as pimbot's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pimbot.domain.durations import format_duration
from pimbot.domain.states import RequestKind, RequestState
from pimbot.ui.cards import (
    ActionId,
    Button,
    ButtonStyle,
    Card,
    DecidersOnly,
    Field,
    FollowUp,
    Mention,
    Time,
    Tone,
    UserText,
)
from pimbot.ui.confirmations import cancel_button, deactivate_button


class View(StrEnum):
    """Which builder drew a stored message (so it can be redrawn)."""

    APPROVAL = "approval"
    REQUESTER = "requester"
    NOTICE = "notice"
    REMINDER = "reminder"
    APPROVER_REMINDER = "approver_reminder"
    PROBLEM = "problem"
    INFO = "info"  # a one-off note with its own title and text (no request behind it)
    BREAKGLASS = "breakglass"
    REVIEW_ITEM = "review_item"  # subject: a review item
    REVIEW_LIST = "review_list"  # subject: a reviewer's open items (payload: reviewer)
    REVIEW_NOTICE = "review_notice"  # a campaign's start, progress or summary (payload text)


@dataclass(frozen=True)
class Vote:
    approver: str
    decision: str  # approve | deny
    comment: str
    at: datetime


@dataclass(frozen=True)
class RequestSnapshot:
    id: str
    kind: RequestKind
    email: str
    role: str
    state: RequestState
    duration: timedelta | None
    reason: str
    ticket: str
    requested_at: datetime
    start_at: datetime
    granted_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    revoked_at: datetime | None
    decided_at: datetime | None
    decided_by: str
    decision_note: str
    failure: str
    min_approvals: int
    approvers: tuple[str, ...]
    votes: tuple[Vote, ...]
    kept_by: str = ""  # ended, but another of the person's requests still holds the grant
    rule_note: str = ""  # what an approval rule decided or why it could not (on-call down)
    rules: tuple[str, ...] = ()  # the role's approval rules in words
    escalated_to: tuple[str, ...] = ()  # approvers added by escalation so far

    @property
    def approvals(self) -> int:
        return sum(1 for v in self.votes if v.decision == "approve")


_STATE_WORDS: dict[RequestState, str] = {
    RequestState.PENDING_APPROVAL: "waiting for approval",
    RequestState.APPROVED: "approved",
    RequestState.ACTIVE: "active",
    RequestState.EXPIRED: "expired",
    RequestState.DEACTIVATED: "deactivated",
    RequestState.REVOKED: "revoked",
    RequestState.DENIED: "denied",
    RequestState.CANCELLED: "cancelled",
    RequestState.TIMED_OUT: "timed out",
    RequestState.FAILED: "failed",
}


def state_words(snapshot: RequestSnapshot) -> str:
    if snapshot.state is RequestState.APPROVED and snapshot.kind is RequestKind.EXTENSION:
        if snapshot.failure:  # approved, but the activation had ended or was at its maximum
            return f"approved, but not applied ({snapshot.failure})"
        return "approved (extension applied)"
    return _STATE_WORDS[snapshot.state]


def _duration(snapshot: RequestSnapshot) -> str:
    if snapshot.duration is None:
        return "permanent" if snapshot.expires_at is None else "until the end date"
    return format_duration(snapshot.duration)


def _request_fields(snapshot: RequestSnapshot) -> list[Field]:
    fields = [
        Field("Requester", Mention(snapshot.email)),
        Field("Role", snapshot.role),
        Field("Duration", _duration(snapshot)),
    ]
    if snapshot.reason:
        fields.append(Field("Reason", UserText(snapshot.reason)))
    if snapshot.ticket:
        fields.append(Field("Ticket", UserText(snapshot.ticket)))
    if snapshot.start_at > snapshot.requested_at + timedelta(seconds=5):
        fields.append(Field("Starts", Time(snapshot.start_at)))
    return fields


def _decision_line(snapshot: RequestSnapshot) -> tuple[str, Tone]:
    who = snapshot.decided_by
    match snapshot.state:
        case RequestState.PENDING_APPROVAL:
            return "", Tone.WARNING
        case RequestState.DENIED:
            return f"Denied by {who}", Tone.DANGER
        case RequestState.CANCELLED if _withdrawn(snapshot):
            return f"Withdrawn: {snapshot.decision_note}", Tone.INFO
        case RequestState.CANCELLED:
            return f"Cancelled by {who or snapshot.email}", Tone.INFO
        case RequestState.TIMED_OUT:
            return "Timed out without enough approvals", Tone.INFO
        case RequestState.FAILED:
            return f"Approved, but the grant failed: {snapshot.failure}", Tone.DANGER
        case _:
            approvers = ", ".join(v.approver for v in snapshot.votes if v.decision == "approve")
            by = approvers or who or "policy"
            return f"Approved by {by} — now {state_words(snapshot)}", Tone.GOOD


def how_it_ended(snapshot: RequestSnapshot) -> str:
    """What became of a request no longer waiting, after its id: ``was already decided by
    alice@example.com; it is denied``. A cancelled or timed-out request was not decided by
    an approver, so it says who withdrew it (or that nobody answered in time)."""
    who = snapshot.decided_by
    match snapshot.state:
        case RequestState.CANCELLED if _withdrawn(snapshot):
            return (f"was withdrawn: {snapshot.decision_note}, so there is no access left "
                    "to extend")
        case RequestState.CANCELLED if who in {"", snapshot.email}:
            return f"was cancelled by {snapshot.email}, who requested it"
        case RequestState.CANCELLED:
            why = f" ({snapshot.decision_note})" if snapshot.decision_note else ""
            return f"was cancelled by {who}{why}"
        case RequestState.TIMED_OUT:
            return "timed out without enough approvals"
        case _:
            by = f" by {who}" if who else ""
            return f"was already decided{by}; it is {state_words(snapshot)}"


def _withdrawn(snapshot: RequestSnapshot) -> bool:
    """An extension request cancelled because the activation it extends ended (its note
    says how; a requester's own cancel leaves none)."""
    return snapshot.kind is RequestKind.EXTENSION and bool(snapshot.decision_note)


# The label of the time a request stopped waiting, on an approver's copy of its card: a
# cancelled or timed-out request was never decided by anyone.
_ENDED_LABEL = {RequestState.CANCELLED: "Cancelled", RequestState.TIMED_OUT: "Timed out"}


def _note_field(snapshot: RequestSnapshot) -> list[Field]:
    """The denier's words and each approver's comment, as fields of their own
    (never inside the card's text): ``Comment from alice@example.com: “ok for INC-42”``."""
    fields = [Field(f"Comment from {v.approver}", UserText(v.comment))
              for v in snapshot.votes if v.comment and v.decision == "approve"]
    if snapshot.decision_note and snapshot.state is RequestState.DENIED:
        fields.append(Field("Denial reason", UserText(snapshot.decision_note)))
    return fields


def approval_card(snapshot: RequestSnapshot) -> Card:
    """The card approvers and notify channels see; buttons only while it is pending."""
    kind = {
        RequestKind.EXTENSION: "Extension",
        RequestKind.BREAKGLASS: "Break-glass",
    }.get(snapshot.kind, "Activation")
    fields = _request_fields(snapshot)
    fields.append(
        Field("Approvals", f"{snapshot.approvals} of {snapshot.min_approvals}")
    )
    decision, tone = _decision_line(snapshot)
    ended = _ENDED_LABEL.get(snapshot.state, "Decided")
    actions: tuple[Button, ...]
    if snapshot.state is RequestState.PENDING_APPROVAL:
        actions = (
            Button("Approve", ActionId.APPROVE, snapshot.id, ButtonStyle.PRIMARY),
            Button("Deny", ActionId.DENY, snapshot.id, ButtonStyle.DANGER),
        )
        title = f"{kind} approval needed: {snapshot.email} → {snapshot.role}"
        context = f"Request {snapshot.id}"
    else:
        actions = ()
        title = f"{kind} request {snapshot.id}: {state_words(snapshot)}"
        context = f"Request {snapshot.id} · {ended.lower()}"
    if snapshot.decided_at is not None and snapshot.state is not RequestState.PENDING_APPROVAL:
        fields.append(Field(ended, Time(snapshot.decided_at)))
    fields.extend(_rule_fields(snapshot))
    fields.extend(_note_field(snapshot))
    deciders = DecidersOnly(snapshot.id, View.APPROVAL.value) if actions else None
    return Card(title=title, text=decision, fields=tuple(fields), actions=actions,
                context=context, tone=tone, deciders_only=deciders,
                follow_up=FollowUp.PENDING)


def _rule_fields(snapshot: RequestSnapshot) -> list[Field]:
    """The role's approval rules, what they decided here, and any escalation so far."""
    fields = []
    if snapshot.rules:
        fields.append(Field("Approval rules", "; ".join(snapshot.rules)))
    if snapshot.rule_note:
        fields.append(Field("Rule", snapshot.rule_note))
    if snapshot.escalated_to:
        fields.append(Field("Escalated", "also asked: " + ", ".join(snapshot.escalated_to)))
    return fields


def requester_card(snapshot: RequestSnapshot, *, revoke_failures: int = 0) -> Card:
    """What the requester sees about their own request, with the buttons that apply now.
    ``revoke_failures``: its access ended but removing it at the provider has failed so often
    (the App Home shows such requests as *revoke pending* until the provider confirms)."""
    fields = _request_fields(snapshot)[1:]
    if snapshot.rule_note:
        fields.append(Field("Rule", snapshot.rule_note))
    actions: tuple[Button, ...] = ()
    text = ""
    tone = Tone.INFO
    match snapshot.state:
        case RequestState.PENDING_APPROVAL:
            text = (f"Waiting for {snapshot.min_approvals - snapshot.approvals} more approval(s) "
                    f"from: {', '.join(a for a in snapshot.approvers if a != snapshot.email)}")
            actions = (cancel_button(snapshot),)
            tone = Tone.WARNING
        case RequestState.APPROVED if snapshot.kind is not RequestKind.EXTENSION:
            # Waiting for a later start, it is still a request: it can be cancelled. Being
            # granted now, it is an activation (as in Entra PIM): the action is Deactivate,
            # which works the same before and after the grant lands (a Cancel request press
            # after it landed would be refused: the request is active by then).
            later = snapshot.start_at > (snapshot.decided_at or snapshot.requested_at)
            text = ("Approved; access will be granted at the start time." if later
                    else "Approved; granting access now…")
            actions = (cancel_button(snapshot) if later else deactivate_button(snapshot),)
        case RequestState.ACTIVE:
            text = "Access is active."
            if snapshot.expires_at is not None:
                fields.append(Field("Expires", Time(snapshot.expires_at)))
            actions = (Button("Extend", ActionId.EXTEND, snapshot.id),
                       deactivate_button(snapshot))
            tone = Tone.GOOD
        case _:
            decision, tone = _decision_line(snapshot)
            text = decision if snapshot.state in {
                RequestState.DENIED, RequestState.CANCELLED, RequestState.TIMED_OUT,
                RequestState.FAILED} else f"Access {state_words(snapshot)}."
            if snapshot.state in {RequestState.EXPIRED, RequestState.DEACTIVATED,
                                  RequestState.REVOKED}:
                if snapshot.decision_note and snapshot.state is RequestState.REVOKED:
                    text += f" Why: {snapshot.decision_note}."  # pimbot's note of the cause
                if snapshot.revoked_at:
                    text += " Access removed at the provider."
                elif snapshot.kept_by:
                    text += (f" You still have {snapshot.role} through request "
                             f"{snapshot.kept_by}.")
                elif revoke_failures:
                    text += (f" Revoke pending: the provider has not confirmed it after "
                             f"{revoke_failures} attempt(s)"
                             + (f" ({snapshot.failure})" if snapshot.failure else "")
                             + "; pimbot keeps retrying.")
                    tone = Tone.WARNING
                else:
                    text += " Removing access at the provider… (revoke pending)"
    fields.extend(_note_field(snapshot))
    return Card(
        title=f"Your {snapshot.kind.value} of {snapshot.role}: {state_words(snapshot)}",
        text=text, fields=tuple(fields), actions=actions,
        context=f"Request {snapshot.id}", tone=tone, follow_up=FollowUp.STATUS,
    )


def notice_card(snapshot: RequestSnapshot, event: str) -> Card:
    """A channel notice: activated, expired, deactivated, failed, revoke failing."""
    words = {
        "activated": (f"{snapshot.email} activated {snapshot.role}", Tone.WARNING),
        "ended": (f"{snapshot.email}'s {snapshot.role} access {state_words(snapshot)}", Tone.INFO),
        "failed": (f"Grant of {snapshot.role} to {snapshot.email} failed", Tone.DANGER),
        "revoke_failing": (
            f"Revoking {snapshot.role} from {snapshot.email} is failing; retrying", Tone.DANGER),
        "auto_approved": (
            f"{snapshot.email}'s {snapshot.role} request was approved by a rule", Tone.WARNING),
        "revoke_recovered": (
            f"Revoked {snapshot.role} from {snapshot.email} at last (the provider confirmed "
            "it)", Tone.GOOD),
    }
    title, tone = words.get(event, (f"{snapshot.role}: {event}", Tone.INFO))
    fields = _request_fields(snapshot)
    if snapshot.expires_at is not None and event == "activated":
        fields.append(Field("Expires", Time(snapshot.expires_at)))
    text = snapshot.failure if event in {"failed", "revoke_failing"} else ""
    if event == "auto_approved":
        text = snapshot.rule_note
        fields.extend(_rule_fields(snapshot))
    return Card(title=title, text=text, fields=tuple(fields), context=f"Request {snapshot.id}",
                tone=tone)


def breakglass_card(snapshot: RequestSnapshot) -> Card:
    fields = _request_fields(snapshot)
    if snapshot.expires_at is not None:
        fields.append(Field("Expires", Time(snapshot.expires_at)))
    return Card(
        title=f"BREAK-GLASS: {snapshot.email} took {snapshot.role} without approval",
        text="Emergency access was granted without approval. A follow-up review is required.",
        fields=tuple(fields), context=f"Request {snapshot.id}", tone=Tone.DANGER,
    )


def expiry_reminder_card(snapshot: RequestSnapshot) -> Card:
    fields: tuple[Field, ...] = ()
    if snapshot.expires_at is not None:
        fields = (Field("Expires", Time(snapshot.expires_at)),)
    actions: tuple[Button, ...] = ()
    if snapshot.state is RequestState.ACTIVE:
        actions = (Button("Extend", ActionId.EXTEND, snapshot.id, ButtonStyle.PRIMARY),
                   deactivate_button(snapshot))
    return Card(
        title=f"Your {snapshot.role} access ends soon",
        text="Extend it if you still need it, or deactivate it now.",
        fields=fields, actions=actions, context=f"Request {snapshot.id}", tone=Tone.WARNING,
        follow_up=FollowUp.STATUS,
    )


def approver_reminder_card(snapshot: RequestSnapshot) -> Card:
    card = approval_card(snapshot)
    deciders = card.deciders_only and DecidersOnly(snapshot.id, View.APPROVER_REMINDER.value)
    return Card(title=f"Reminder: {card.title}", text=card.text, fields=card.fields,
                actions=card.actions, context=card.context, tone=card.tone,
                deciders_only=deciders, follow_up=card.follow_up)


def problem_card(title: str, text: str) -> Card:
    return Card(title=title, text=text, tone=Tone.DANGER)


def info_card(title: str, text: str) -> Card:
    return Card(title=title, text=text, tone=Tone.INFO)


def render(view: View, snapshot: RequestSnapshot, event: str = "") -> Card:
    match view:
        case View.APPROVAL:
            return approval_card(snapshot)
        case View.REQUESTER:
            return requester_card(snapshot)
        case View.NOTICE:
            return notice_card(snapshot, event)
        case View.REMINDER:
            return expiry_reminder_card(snapshot)
        case View.APPROVER_REMINDER:
            return approver_reminder_card(snapshot)
        case View.BREAKGLASS:
            return breakglass_card(snapshot)
        case View.PROBLEM:
            return problem_card(event, snapshot.failure)
        case View.REVIEW_ITEM | View.REVIEW_LIST | View.REVIEW_NOTICE:
            raise ValueError(f"{view} is drawn from a review item, not a request")
        case View.INFO:
            return info_card(event, "")
