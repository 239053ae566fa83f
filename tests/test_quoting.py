"""How a person's text is quoted on every surface (``pimbot.ui.quoting``), by table."""

from __future__ import annotations

import pytest

from pimbot.ui.quoting import quote

CASES = [
    ("restore backup", "“restore backup”"),
    ("x\n*Approvals*\r\n1 of 1", "“x ↵ *Approvals* ↵ 1 of 1”"),
    ("a\u2028b\u2029c\x85d\ve\ff", "“a ↵ b ↵ c ↵ d ↵ e ↵ f”"),
    ("see https://evil.example/approve", "“see https[:]//evil[.]example/approve”"),
    ("www.evil.com, bob@example.com", "“www[.]evil[.]com, bob@example[.]com”"),
    ("mailto:a@b.io javascript:alert(1)", "“mailto[:]a@b[.]io javascript[:]alert(1)”"),
    ("v1.2.3 for 1.5h, e.g. now", "“v1.2.3 for 1.5h, e.g. now”"),
    ("\x1b[2J\x07bell\ttab", "“\ufffd[2J\ufffdbell tab”"),
    ("evil\u202etxt.exe\u2066", "“eviltxt[.]exe”"),
    ("x” Approvals: “1 of 1", '“x" Approvals: "1 of 1”'),
    ("  padded  ", "“padded”"),
]


@pytest.mark.parametrize(("typed", "shown"), CASES)
def test_a_persons_text_becomes_one_inert_quoted_line(typed: str, shown: str) -> None:
    assert quote(typed) == shown
