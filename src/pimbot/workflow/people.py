"""Naming a person in a command: a mention or an email picks them; a display name never does.

Display names are chosen by each person on their chat platform, so anyone can call themselves
"Dana Lee". A command that names someone by display name (``assign "Dana Lee" …``) therefore
changes nothing: pimbot answers with everyone the name matches, as a mention and an email,
and asks for one of those instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from pimbot.commands.model import UserRef, UserRefKind
from pimbot.domain.errors import ErrorCode, PimError
from pimbot.store.tables import PersonRow, PlatformIdentityRow
from pimbot.ui.cards import Card, Field, Mention, Tone
from pimbot.workflow.actor import Actor
from pimbot.workflow.context import Context

MAX_SHOWN = 10  # matches listed in the answer (a name shared by more is rare, and a hint)


@dataclass(frozen=True)
class NameMatch:
    email: str
    display_name: str


class NamedByDisplayName(PimError):
    """A person given by display name: refused, with the people the name matches."""

    def __init__(self, name: str, matches: tuple[NameMatch, ...], hint: str) -> None:
        self.name = name
        self.matches = matches
        shown = ", ".join(m.email for m in matches[:MAX_SHOWN])
        if not matches:
            found = f"Nobody is called '{name}'"
        elif len(matches) == 1:
            found = f"'{name}' is the display name of {shown}"
        else:
            more = f" and {len(matches) - MAX_SHOWN} more" if len(matches) > MAX_SHOWN else ""
            found = f"'{name}' is the display name of {len(matches)} people: {shown}{more}"
        super().__init__(
            ErrorCode.UNKNOWN_USER,
            f"{found}. People choose their own display names, so pimbot never picks someone "
            "by one: name them by mention or email. Nothing was changed.",
            hint,
        )

    def card(self) -> Card | None:
        """Each match as a field: the email as its label, the person as a mention."""
        if not self.matches:
            return None
        fields = tuple(Field(m.email, Mention(m.email, m.display_name))
                       for m in self.matches[:MAX_SHOWN])
        return Card(title=f"Who do you mean by '{self.name}'?", fields=fields,
                    context="Run the command again with a mention or an email.",
                    tone=Tone.WARNING)


async def resolve_user(ctx: Context, actor: Actor, ref: UserRef, hint: str) -> str:
    """A mention (on the actor's platform) or an email → the person's email.

    A display name raises :class:`NamedByDisplayName`, whatever it matches.
    """
    if ref.kind is UserRefKind.EMAIL:
        return ref.value.lower()
    if ref.kind is UserRefKind.MENTION:
        async with ctx.db.read() as session:
            row = await session.get(PlatformIdentityRow, (actor.platform, ref.value))
        if row is None:
            raise PimError(ErrorCode.UNKNOWN_USER,
                           f"I don't know {ref} yet; use their email instead.", hint)
        return row.email
    raise NamedByDisplayName(ref.value, await _matches(ctx, ref.value), hint)


async def _matches(ctx: Context, name: str) -> tuple[NameMatch, ...]:
    """Everyone whose display name (on any platform, or as first seen) is ``name``."""
    wanted = name.strip().lower()
    found: dict[str, str] = {}
    async with ctx.db.read() as session:
        identities = await session.execute(
            select(PlatformIdentityRow.email, PlatformIdentityRow.display_name)
            .where(func.lower(PlatformIdentityRow.display_name) == wanted))
        people = await session.execute(
            select(PersonRow.email, PersonRow.display_name)
            .where(func.lower(PersonRow.display_name) == wanted))
        for email, display_name in [*identities.all(), *people.all()]:
            found.setdefault(email, display_name)
    return tuple(NameMatch(email, found[email]) for email in sorted(found))
