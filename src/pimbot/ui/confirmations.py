"""The buttons that ask before they act, and their questions.

Cancelling a request and deactivating access cannot be undone: the person would have to
request (and perhaps wait for approval) again. Such a button carries a ``Confirm``; a
platform with a native dialog asks it there (Slack), one without shows the question first
(Teams: a card that opens under the button). The console's ``click N`` is the press that
answers the question: DESIGN.md has it press the button, and scripts rely on one press.
The words are the core's, so every platform asks the same.
"""

from __future__ import annotations

from typing import Protocol

from pimbot.ui.cards import ActionId, Button, ButtonStyle, Confirm


class _Subject(Protocol):
    """What the questions name (a ``views.RequestSnapshot``)."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> str: ...


def cancel_button(request: _Subject) -> Button:
    return Button("Cancel request", ActionId.CANCEL, request.id, ButtonStyle.DANGER, Confirm(
        title=f"Cancel request {request.id}?",
        text=(f"Your request for {request.role} is withdrawn and its approvers are told. To "
              f"have {request.role} later you would request it again."),
        yes="Cancel request"))


def deactivate_button(request: _Subject) -> Button:
    return Button("Deactivate", ActionId.DEACTIVATE, request.id, ButtonStyle.DANGER, Confirm(
        title=f"Deactivate {request.role} now?",
        text=(f"Your {request.role} access ends now and is removed at the provider. To use it "
              "again you would activate it again (with its approval, if the role needs one)."),
        yes="Deactivate"))


def accept_recommendations_button(waiting: int) -> Button:
    """A reviewer's bulk answer: every item they have not answered, as pimbot recommends
    (those it recommends removing lose their access)."""
    return Button("Accept recommendations", ActionId.REVIEW_ACCEPT, "mine", confirm=Confirm(
        title=f"Accept pimbot's recommendations for {waiting} item(s)?",
        text=("Each review item waiting for you is answered as pimbot recommends; anyone it "
              "recommends removing loses that access."),
        yes="Accept them"))
