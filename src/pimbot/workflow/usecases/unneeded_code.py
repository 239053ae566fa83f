"""An authenticator code given where none is asked for is said to be unused, not ignored.

Entra PIM asks for MFA on activation only where a role's setting requires it, so pimbot does
the same: a code given for a role without ``require_mfa`` (or an approval without
``approval.require_mfa``) neither refuses the request (the extra factor is harmless, and a
command that works should not fail for it) nor is it checked. Checking it would spend it (a
code is accepted once) and fail for someone who never enrolled. The person is told, so
nobody believes a code protected what it did not.
"""

from __future__ import annotations

from dataclasses import replace

from pimbot.ui.cards import Reply


def note_unneeded_code(reply: Reply, code: str | None, needed: bool, what: str) -> Reply:
    """``reply`` with a sentence saying ``what`` needs no code, when one was given for it
    and not needed (and the reply is not a refusal)."""
    if code is None or needed or not reply.ok:
        return reply
    note = f"{what} needs no authenticator code, so the code you gave was not checked or used."
    return replace(reply, text=f"{reply.text} {note}" if reply.text else note)
