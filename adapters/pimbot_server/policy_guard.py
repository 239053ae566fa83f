"""What keeps a blank or cut-short policy file from removing every role and assignment.

The policy file is the source of truth: applying one that defines no roles removes every
role, assignment and group the database holds, and ends every live grant. So:

- a file with no YAML document at all (zero bytes, only blanks or comments: a truncated
  write, the wrong file) is refused by ``policy validate``, ``plan``, ``apply`` and ``pimbot
  run`` alike; ``{}`` is how a file says "no roles" on purpose;
- a policy that defines no roles (``{}``, or a file cut right after ``roles:``) is valid, and
  ``validate`` and ``plan`` say loudly what applying it would remove; ``policy apply`` does
  it (asked for by name, its plan printed); ``pimbot run`` refuses to start when applying it
  would remove anything, so a restart never wipes the roles: apply it on purpose first;
- ``pimbot run`` without a policy file (no ``PIMBOT_POLICY``, no ``./pimbot.yaml``: started
  from another folder, a file renamed) falls back to the bundled example, which is a
  newcomer's first run on an empty database; over a database that holds another policy it
  would replace that policy's roles with the example's, so the start is refused instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pimbot.domain.model import Policy
from pimbot_server.errors import CommandFailed

if TYPE_CHECKING:
    from pimbot.policy.plan import Change
    from pimbot.store.database import Database

_NAMES = {"grant": ("live grant", "live grants")}  # else the kind, and the kind + "s"


def refuse_blank(path: Path, policy: Policy) -> None:
    """Raise ``CommandFailed`` when ``path`` (read as ``policy``) holds no YAML document."""
    if policy.roles:
        return
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # it loaded a moment ago; the loader's own errors speak for it
    if document is None:
        raise CommandFailed(
            f"{path} is empty (no YAML document): refused, so that a truncated or wrong file "
            "cannot remove every role and assignment (try: write {} in it to mean no roles "
            "on purpose)")


async def refuse_wiping(db: Database, policy: Policy, path: Path | None) -> None:
    """``pimbot run`` never applies a policy without roles over a database that holds some:
    ``pimbot policy apply`` does that, asked for by name."""
    if policy.roles:
        return
    from pimbot.policy.plan import plan_policy

    removed = [c for c in await plan_policy(db, policy) if c.action == "remove"]
    if removed:
        raise CommandFailed(
            f"not started: {path} defines no roles, and applying it would remove "
            f"{removals(removed)} (try: pimbot policy plan {path} to see them; pimbot policy "
            f"apply {path} removes them on purpose)")


async def refuse_example_over_real(db: Database, policy: Policy, path: Path | None) -> None:
    """``pimbot run`` on the bundled example (no policy file found) never removes what a
    database holding another policy has: the file was expected and is missing."""
    from pimbot.policy import bundled_example_path
    from pimbot.policy.plan import plan_policy

    if path is None or path != bundled_example_path():
        return
    plan = await plan_policy(db, policy)
    removed = [c for c in plan if c.action == "remove"]
    changed = [replace(c, action="remove") for c in plan if c.action == "change"]
    undone = " and ".join(
        [f"remove {removals(removed)}"] * bool(removed)
        + [f"change {removals(changed)}"] * bool(changed))
    if undone:
        raise CommandFailed(
            "not started: no policy file (PIMBOT_POLICY is not set and there is no "
            f"./pimbot.yaml in {Path.cwd()}), and applying the bundled example instead would "
            f"{undone} of the policy this database holds (try: start pimbot in the folder of "
            "your pimbot.yaml, or set PIMBOT_POLICY to it; pimbot policy apply "
            f"{path} applies the example on purpose)")


def no_roles_warning(path: Path, policy: Policy) -> str | None:
    """``validate``'s warning for a policy without roles (None when it has some)."""
    if policy.roles:
        return None
    return (f"warning: {path} defines no roles and no assignments: applying it removes every "
            "role, group and assignment the database holds and ends every live grant")


def removals(changes: Sequence[Change]) -> str:
    """``3 roles, 1 group and 8 assignments`` for the removals among plan ``changes``."""
    counted = Counter(str(c.kind) for c in changes if c.action == "remove")
    parts = [f"{n} {_NAMES.get(kind, (kind, kind + 's'))[n != 1]}"
             for kind, n in counted.items()]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else "nothing"
