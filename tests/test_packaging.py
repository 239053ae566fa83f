"""The container image installs exactly pinned versions of every runtime dependency."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_deploy_requirements_pin_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    wanted = {_name(r) for r in [*project["dependencies"], *extras["slack"], *extras["teams"],
                                 *extras["azure"]]}
    lines = [line.strip() for line in (ROOT / "deploy/requirements.txt").read_text(
        encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[A-Za-z0-9_.+\-]+", line) for line in lines), \
        [line for line in lines if "==" not in line]
    pinned = {_name(line) for line in lines}
    assert wanted <= pinned, sorted(wanted - pinned)


def test_the_dockerfile_runs_pimbot_as_a_numeric_user_in_exec_form() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^USER \d+:\d+$", text, re.MULTILINE)
    assert 'CMD ["pimbot", "run"]' in text and "HEALTHCHECK" in text
    assert 'VOLUME ["/data"]' in text
