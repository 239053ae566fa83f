"""Where the platform payload fixtures are: ../shared/fixtures beside the checkout, else the
copy in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SHARED = _HERE.parents[1] / "shared" / "fixtures"

FIXTURES = _SHARED if (_SHARED / "slack_signatures.json").exists() else _HERE / "fixtures"
