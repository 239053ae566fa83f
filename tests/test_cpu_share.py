"""The CPU shares `pimbot bench` records beside each report: time the hypervisor took shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pimbot_server.bench import format_stolen, run_benchmarks
from pimbot_server.cli import build_parser
from pimbot_server.cpu_share import read_cpu_times, shares

# /proc/stat's first line: user nice system idle iowait irq softirq steal guest guest_nice
BEFORE = "cpu  1000 0 200 5000 100 0 50 100 0 0\ncpu0 500 0 100 2500 50 0 25 50 0 0\n"
AFTER = "cpu  1300 0 260 5500 100 0 60 380 0 0\ncpu0 650 0 130 2750 50 0 30 190 0 0\n"


def _stat(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_stolen_time_is_its_own_share_of_the_machine(tmp_path: Path) -> None:
    before = read_cpu_times(_stat(tmp_path, "a", BEFORE))
    after = read_cpu_times(_stat(tmp_path, "b", AFTER))
    # 370 ticks busy (300 user + 60 system + 10 softirq), 500 idle, 280 stolen: 1,150 in all
    assert shares(before, after) == {"busy_pct": 32.2, "idle_pct": 43.5, "stolen_pct": 24.3}
    line = format_stolen({"burst": shares(before, after), "quiet": {"stolen_pct": 1.0,
                                                                   "busy_pct": 50.0}})
    assert "burst: the hypervisor took 24.3 %" in line and "quiet" not in line


def test_no_reading_records_nothing(tmp_path: Path) -> None:
    assert read_cpu_times(tmp_path / "missing") is None
    assert read_cpu_times(_stat(tmp_path, "odd", "intr 1 2 3\n")) is None
    assert shares(None, read_cpu_times(_stat(tmp_path, "b", AFTER))) == {}


HAS_PROC_STAT = Path("/proc/stat").exists()


@pytest.mark.skipif(not HAS_PROC_STAT, reason="the CPU shares are read from Linux's /proc/stat")
async def test_bench_writes_how_the_cpu_was_shared_beside_each_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "bench_spin.py").write_text(  # busy for a few clock ticks (10 ms each)
        "import time\n"
        "async def main(args):\n"
        "    t = time.process_time()\n"
        "    while time.process_time() - t < 0.1:\n"
        "        pass\n"
        "    return {'spun': True}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert await run_benchmarks(build_parser().parse_args(["bench", "--out", "r.json"])) == 0
    capsys.readouterr()
    share = json.loads((tmp_path / "r.json").read_text())["cpu"]["spin"]
    assert set(share) == {"busy_pct", "idle_pct", "stolen_pct"}, share
    assert share["busy_pct"] > 0
    assert 99 <= share["busy_pct"] + share["idle_pct"] + share["stolen_pct"] <= 101
