"""The buttons that ask before they act, and their questions.

Cancelling a request and deactivating access cannot be undone: the person would have to
request (and perhaps wait for approval) again. Such a button carries a ``Confirm``; a
platform with a native dialog asks it there (Slack), one without shows the question first
(Teams: a card that opens under the button; the console: ``confirmation_card``, which
``click N`` then presses). The words are the core's, so every platform asks the same.
"""

from __future__ import annotations

from typing import Protocol

from pimbot.ui.cards import ActionId, Button, ButtonStyle, Card, Confirm, Tone


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


def confirmation_card(button: Button) -> Card:
    """The question of ``button`` as a card of its own, for a surface without dialogs: its
    one button goes ahead; anything else leaves things as they are."""
    asked = button.confirm
    if asked is None:
        raise ValueError(f"the button {button.label!r} asks nothing")
    ahead = Button(asked.yes, button.action, button.value, ButtonStyle.DANGER)
    return Card(title=asked.title, text=f"{asked.text}\nNothing changes unless you press "
                f"{asked.yes}; to keep it, do nothing.", actions=(ahead,), tone=Tone.WARNING)
