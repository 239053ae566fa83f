"""A second activation of a role the person already holds is refused, as Entra PIM refuses
a new activation of an active assignment: the first activation stays as it is, and the way
to more time is ``extend``. The refusal is audited (``activation.refused``,
``already_active``). A scheduled activation that starts after the current one ends is not a
second activation and goes on, and neither is an activation beside access an admin
assigned (``assign … active``), which it may outlast."""

from __future__ import annotations

from datetime import datetime

from pimbot.domain.errors import AuditNote, ErrorCode, PimError
from pimbot.domain.model import Role
from pimbot.domain.states import RequestKind
from pimbot.store.tables import RequestRow


def refuse_if_active(held: RequestRow | None, role: Role, start_at: datetime,
                     now: datetime) -> None:
    """Raise the (audited) refusal when ``held`` (the person's active grant of ``role``, read
    in ``activate``'s one read) is an activation still active at ``start_at``."""
    if held is None or held.kind != RequestKind.ACTIVATION.value:
        return  # none, or access an admin assigned (an activation may outlast it)
    if held.expires_at is not None and start_at >= held.expires_at:
        return
    raise PimError(
        ErrorCode.CONFLICT,
        f"{role.name} is already active for you{_until(held.expires_at, now)} "
        f"(request {held.id}); a second activation is refused: use extend to make it last "
        "longer. Nothing was changed.",
        f"extend {role.name}",
        audit=AuditNote("activation.refused", role.name,
                        {"request": held.id, "reason": "already_active"}),
    )


def _until(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return ""
    if expires_at.date() == now.date():
        return f" until {expires_at:%H:%M} UTC"
    return f" until {expires_at:%Y-%m-%d %H:%M} UTC"
