"""Review prompts as neutral cards: one item, a page of items, a campaign notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pimbot.ui.cards import (
    ActionId,
    Button,
    ButtonStyle,
    Card,
    Field,
    FollowUp,
    Mention,
    Time,
    Tone,
    UserText,
)
from pimbot.ui.confirmations import accept_recommendations_button

PAGE = 10  # items per page: 2 buttons each plus "accept", inside every platform's limits


@dataclass(frozen=True)
class ReviewItemSnapshot:
    id: str
    kind: str  # assignment | breakglass
    campaign: str  # the campaign's name ("" for a break-glass follow-up)
    email: str
    role: str
    assignment_type: str
    since: datetime | None
    last_activation_at: datetime | None
    activations_90d: int
    recommendation: str  # keep | remove
    recommendation_reason: str
    decision: str | None
    decided_by: str
    decided_at: datetime | None
    reason: str
    outcome: str
    ends_at: datetime | None
    request_id: str | None
    breakglass_reason: str = ""

    @property
    def open(self) -> bool:
        return self.decision is None and not self.outcome


def _words(item: ReviewItemSnapshot, decision: str | None) -> str:
    if item.kind == "breakglass":
        return {"keep": "justified", "remove": "not justified"}.get(decision or "", "")
    return {"keep": "keep", "remove": "remove"}.get(decision or "", "")


def _buttons(item: ReviewItemSnapshot, suffix: str = "") -> tuple[Button, ...]:
    keep, remove = ("Justified", "Not justified") if item.kind == "breakglass" \
        else ("Keep", "Remove")
    return (Button(keep + suffix, ActionId.REVIEW_KEEP, item.id, ButtonStyle.PRIMARY),
            Button(remove + suffix, ActionId.REVIEW_REMOVE, item.id, ButtonStyle.DANGER))


def _fields(item: ReviewItemSnapshot) -> list[Field]:
    fields = [Field("Person", Mention(item.email)), Field("Role", item.role)]
    if item.kind == "breakglass":
        if item.breakglass_reason:
            fields.append(Field("Break-glass reason", UserText(item.breakglass_reason)))
        if item.since is not None:
            fields.append(Field("Activated", Time(item.since)))
        return fields
    fields.append(Field("Assignment", item.assignment_type))
    if item.since is not None:
        fields.append(Field("Since", Time(item.since)))
    fields.append(Field("Last activation", Time(item.last_activation_at)
                        if item.last_activation_at else "never"))
    fields.append(Field("Activations (90 days)", str(item.activations_90d)))
    fields.append(Field("Recommendation",
                        f"{_words(item, item.recommendation)} — {item.recommendation_reason}"))
    return fields


def review_item_card(item: ReviewItemSnapshot) -> Card:
    """One item: who, what, how used, pimbot's recommendation; buttons while open."""
    if item.kind == "breakglass":
        title = f"Break-glass follow-up: was {item.email}'s {item.role} access justified?"
    else:
        title = f"Access review {item.campaign}: keep {item.email} on {item.role}?"
    fields = _fields(item)
    if item.open:
        text = "Answer before " + (f"{item.ends_at:%Y-%m-%d %H:%M} UTC." if item.ends_at
                                   else "the follow-up is closed.")
        tone, actions = Tone.WARNING, _buttons(item)
    else:
        verdict = _words(item, item.decision) or item.outcome
        who = f" by {item.decided_by}" if item.decided_by else ""
        text = f"Answered: {verdict}{who}." if item.decision else f"Closed: {item.outcome}."
        if item.reason:
            fields.append(Field("Reviewer's reason", UserText(item.reason)))
        tone = Tone.DANGER if item.decision == "remove" or item.outcome == "removed" \
            else Tone.GOOD
        actions = ()
    return Card(title=title, text=text, fields=tuple(fields), actions=actions,
                context=f"Review item {item.id}", tone=tone, follow_up=FollowUp.REVIEWS)


def review_list_card(items: list[ReviewItemSnapshot], total: int) -> Card:
    """A page of the items waiting for one reviewer, with buttons for each and a bulk
    "accept recommendations"."""
    if not items:
        return Card(title="No review items wait for you.", tone=Tone.GOOD)
    fields = []
    actions: list[Button] = []
    for number, item in enumerate(items, start=1):
        label = f"{number}. {item.email} · {item.role}"
        if item.kind == "breakglass":
            value = "break-glass follow-up"
        else:
            value = (f"{item.assignment_type}; last activation "
                     f"{item.last_activation_at:%Y-%m-%d}" if item.last_activation_at
                     else f"{item.assignment_type}; never activated")
            value += f"; pimbot recommends {_words(item, item.recommendation)}"
        fields.append(Field(label, f"{value} (item {item.id})"))
        actions.extend(_buttons(item, f" {number}"))
    actions.append(accept_recommendations_button(total))
    more = f" Showing {len(items)} of {total}; answer these to see the rest." \
        if total > len(items) else ""
    return Card(title=f"{total} access review item(s) wait for your answer",
                text="Keep or remove each, or accept pimbot's recommendations." + more,
                fields=tuple(fields), actions=tuple(actions), tone=Tone.WARNING,
                context="Reviews", follow_up=FollowUp.REVIEWS)


def review_notice_card(title: str, text: str, reason_from: str = "", reason: str = "") -> Card:
    """A review notice in pimbot's words; a reviewer's typed reason is a field of its own,
    ``Reason from alice@example.com: “…”``, never inside pimbot's sentence."""
    fields = (Field(f"Reason from {reason_from or 'the reviewer'}", UserText(reason)),) \
        if reason else ()
    return Card(title=title, text=text, tone=Tone.INFO, fields=fields, context="Access review")
