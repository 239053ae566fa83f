"""The errors every ``pimbot`` sub-command raises when it cannot do its job."""

from __future__ import annotations

import os
from pathlib import Path


class CommandFailed(Exception):
    """A sub-command could not do its job; the message is printed as one line (exit 1)."""


class UsageError(CommandFailed):
    """The command was given wrong: an argument missing or malformed (exit 2, as argparse)."""


def cannot_write(path: str | Path, exc: OSError) -> CommandFailed:
    """``FILE`` could not be created or written: which file, and what is wrong with it."""
    target = Path(path)
    if isinstance(exc, FileNotFoundError):
        why = f"the directory {target.parent} does not exist"
    elif isinstance(exc, IsADirectoryError):
        why = "it is a directory"
    elif isinstance(exc, NotADirectoryError):
        why = f"{target.parent} is not a directory"
    elif isinstance(exc, PermissionError):
        why = "permission denied"
    else:
        why = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return CommandFailed(f"cannot write {target}: {why}")


def check_writable(path: str | Path) -> None:
    """Raise ``cannot_write`` now when ``path``'s directory is missing or read-only (before
    the work whose result it would hold; sqlite3 would say only "unable to open")."""
    folder = Path(path).parent
    if not folder.exists():
        raise cannot_write(path, FileNotFoundError())
    if not folder.is_dir():
        raise cannot_write(path, NotADirectoryError())
    if not os.access(folder, os.W_OK):
        raise cannot_write(path, PermissionError())
