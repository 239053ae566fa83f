"""The Teams app package: manifest (bot, personal and team scopes, commands of the grammar),
icons, and ``pimbot manifest teams --app-id ID --out FILE.zip``."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from pimbot.commands.catalog import TOPICS
from pimbot.domain.errors import PimError
from pimbot_server.cli import main
from pimbot_teams.manifest import (
    PLACEHOLDER_APP_ID,
    color_icon,
    manifest_data,
    outline_icon,
    render_manifest,
)

SOURCES = Path(__file__).resolve().parents[2] / "manifest" / "teams"
APP_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_shipped_sources_are_the_rendered_ones() -> None:
    assert (SOURCES / "manifest.json").read_text() == render_manifest(PLACEHOLDER_APP_ID)
    assert (SOURCES / "color.png").read_bytes() == color_icon()
    assert (SOURCES / "outline.png").read_bytes() == outline_icon()


def test_the_bot_has_personal_and_team_scopes_and_the_grammars_commands() -> None:
    data = manifest_data(APP_ID)
    assert data["id"] == APP_ID and data["manifestVersion"] == "1.17"
    (bot,) = data["bots"]
    assert bot["botId"] == APP_ID and bot["scopes"] == ["personal", "team"]
    for commands in bot["commandLists"]:
        assert 1 <= len(commands["commands"]) <= 10, "Teams shows ten per scope"
        for command in commands["commands"]:
            assert command["title"].split()[0] in TOPICS, command
            assert len(command["title"]) <= 32 and len(command["description"]) <= 128
    assert png_size(color_icon()) == (192, 192) and png_size(outline_icon()) == (32, 32)


def test_an_app_id_must_be_a_guid() -> None:
    with pytest.raises(PimError):
        manifest_data("not-a-guid")


def test_the_cli_builds_an_uploadable_package(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "pimbot-teams.zip"
    assert main(["manifest", "teams", "--app-id", APP_ID, "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
    assert manifest["bots"][0]["botId"] == APP_ID
    assert main(["manifest", "teams", "--app-id", APP_ID]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == APP_ID


def test_a_missing_or_malformed_app_id_is_wrong_usage(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    assert main(["manifest", "teams", "--app-id", "notaguid"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "pimbot: --app-id: 'notaguid' is not a Microsoft app id (a GUID) (try: pimbot "
        f"manifest teams --app-id {APP_ID})"]
    assert main(["manifest", "teams"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "pimbot: the Teams manifest needs an app id (try: pimbot manifest teams --app-id "
        "GUID, or set MICROSOFT_APP_ID)"]
