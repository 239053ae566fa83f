"""How text a person supplied is shown: as a quotation that cannot pass for pimbot's words.

A reason, ticket, comment or display name can carry line breaks that start a fake field
(``restore\\n*Approvals*\\n1 of 1``), a bare link that invites a click, a closing quote mark,
terminal escape sequences, or bidirectional controls that reorder what is read. ``quote``
turns it into one inert line between “ and ”:

- line breaks become `` ↵ `` (so no line of it can start a field of its own);
- bidirectional controls and other invisible characters are dropped, as they are from what
  people type before it is kept (``pimbot.domain.typed_text``), and control characters are
  shown as ``�`` (text stored before that rule is drawn the same way);
- curly quotes become ``"`` (so it cannot close the quotation early);
- links are broken where they would be followed: ``https[:]//evil[.]example/approve``.

Each adapter then escapes the result for its platform, and neutralises its own formatting
marks where it has to show the quotation inside formatted text (Slack's mrkdwn).
"""

from __future__ import annotations

import re

from pimbot.domain.typed_text import without_invisible

OPEN, CLOSE = "“", "”"
LINE_BREAK = " ↵ "

_BREAKS = re.compile("\r\n|[\n\r\v\f\x85\u2028\u2029]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"'})
# scheme://…, and the schemes that need no slashes
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,31}):(?=//)|\b(mailto|tel|sms|javascript|data):")
# a dot between host-name labels: example.com, www.evil.example (not 1.5h, e.g., v2.x)
_HOST_DOT = re.compile(r"(?<=[A-Za-z0-9-])\.(?=[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9])")


def flatten(text: str) -> str:
    """One line without control characters (tabs become spaces)."""
    text = without_invisible(text).replace("\t", " ")
    text = _BREAKS.sub(LINE_BREAK, text.strip())
    return _CONTROLS.sub("\ufffd", text)


def defang(text: str) -> str:
    """Links cannot be followed by a click: ``https[:]//evil[.]example``."""
    text = _SCHEME.sub(lambda m: f"{m.group(1) or m.group(2)}[:]", text)
    return _HOST_DOT.sub("[.]", text)


def quote(text: str) -> str:
    """The whole treatment: “one inert line”."""
    return OPEN + defang(flatten(text.translate(_QUOTES))) + CLOSE
