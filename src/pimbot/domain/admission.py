"""Who may speak to pimbot at all: a pure decision, before any command is read.

An adapter says where a request came from and who sent it, in neutral words (a ``Standing``):
a member of the workspace or tenant this deployment serves, a guest account of it, a person
from another organisation (a shared channel), or a request from another workspace altogether.
The core decides; only members get in, and guests only when the platform's policy section
allows them (``slack: {allow_guests: true}``). Someone the platform would not vouch for just
now is refused too, never let in as whatever they were last time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pimbot.domain.model import ChatRules


class Standing(StrEnum):
    MEMBER = "member"
    GUEST = "guest"  # a restricted or single-channel guest of the served workspace
    EXTERNAL = "external"  # a person of another organisation, e.g. in a shared channel
    OTHER_WORKSPACE = "other_workspace"  # the request came from a workspace not served here
    # the platform would not say where the person stands now (not found in the conversation
    # the request came from, or its lookup could not be made and nothing stored says)
    UNCONFIRMED = "unconfirmed"


class AdmissionVerdict(StrEnum):
    ADMITTED = "admitted"
    GUEST_REFUSED = "guest_refused"
    EXTERNAL_REFUSED = "external_refused"
    OTHER_WORKSPACE_REFUSED = "other_workspace_refused"
    UNCONFIRMED_REFUSED = "unconfirmed_refused"


@dataclass(frozen=True)
class Caller:
    """Who sent an inbound request, as the adapter could establish it."""

    platform: str
    user_id: str
    standing: Standing
    email: str = ""  # only when the platform vouches for it (not for people from elsewhere)
    team: str = ""  # the workspace / tenant the request came from

    @property
    def label(self) -> str:
        """Who to name in the audit log: the email when vouched for, else the platform id."""
        return self.email or f"{self.platform}:{self.user_id or 'unknown'}"


@dataclass(frozen=True)
class AdmissionDecision:
    verdict: AdmissionVerdict
    message: str

    @property
    def allowed(self) -> bool:
        return self.verdict is AdmissionVerdict.ADMITTED


NOTHING_CHANGED = "nothing was changed"


def decide_admission(standing: Standing, rules: ChatRules) -> AdmissionDecision:
    """May a request from a caller of this standing become a turn?"""
    match standing:
        case Standing.MEMBER:
            return AdmissionDecision(AdmissionVerdict.ADMITTED, "")
        case Standing.GUEST if rules.allow_guests:
            return AdmissionDecision(AdmissionVerdict.ADMITTED, "")
        case Standing.GUEST:
            return AdmissionDecision(
                AdmissionVerdict.GUEST_REFUSED,
                f"Guest accounts cannot use pimbot here; {NOTHING_CHANGED} "
                "(an admin can allow guests in the policy).",
            )
        case Standing.EXTERNAL:
            return AdmissionDecision(
                AdmissionVerdict.EXTERNAL_REFUSED,
                f"pimbot takes requests only from people of its own organisation, not from "
                f"people outside it (shared channels); {NOTHING_CHANGED}.",
            )
        case Standing.OTHER_WORKSPACE:
            return AdmissionDecision(
                AdmissionVerdict.OTHER_WORKSPACE_REFUSED,
                f"This pimbot serves another workspace and takes no requests from this one; "
                f"{NOTHING_CHANGED}.",
            )
        case Standing.UNCONFIRMED:
            return AdmissionDecision(
                AdmissionVerdict.UNCONFIRMED_REFUSED,
                f"pimbot could not confirm your account with the chat platform just now, so "
                f"it took no request from this message; {NOTHING_CHANGED} (try again in a "
                f"minute, in your personal chat with pimbot).",
            )
