"""The error every ``pimbot`` sub-command raises when it cannot do its job."""

from __future__ import annotations


class CommandFailed(Exception):
    """A sub-command could not do its job; the message is printed as one line."""
