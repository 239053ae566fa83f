"""``pimbot bench [NAME…]``: run ``bench/bench_*.py`` modules' ``async def main(args) -> dict``.

The ``bench/`` folder is looked for in the current directory, then in the source tree this
package was installed from (an editable install). Each report is printed as it finishes, then
a summary table of every report's headline (its ``figure``, ``target`` and ``met`` keys, when
it has them); everything, with the machine it ran on, is written as JSON to ``--out``. A
benchmark that raises is reported and makes the exit code 1. See docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from pimbot_server.cpu_share import read_cpu_times, shares
from pimbot_server.errors import cannot_write, check_writable

log = logging.getLogger(__name__)

STOLEN_NOTABLE = 5.0  # per cent of CPU time taken by the hypervisor worth a line of its own

BenchMain = Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]


def find_bench_dir(cwd: Path | None = None) -> Path | None:
    here = (cwd or Path.cwd()) / "bench"
    source_tree = Path(__file__).resolve().parents[2] / "bench"
    for candidate in (here, source_tree):
        if candidate.is_dir() and any(candidate.glob("bench_*.py")):
            return candidate
    return None


def discover(folder: Path, only: str | None = None, names: list[str] | None = None) -> list[Path]:
    """The benchmarks asked for: every one, or those whose name is one of ``names`` (or, for a
    name that matches none exactly, contains it)."""
    wanted = [*(names or []), *([only] if only else [])]
    found = sorted(folder.glob("bench_*.py"))
    if not wanted:
        return found
    chosen: list[Path] = []
    for want in wanted:
        exact = [path for path in found if path.stem.removeprefix("bench_") == want]
        for path in exact or [path for path in found if want in path.stem]:
            if path not in chosen:
                chosen.append(path)
    return chosen


def load_main(path: Path) -> BenchMain:
    spec = importlib.util.spec_from_file_location(f"pimbot_bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    if str(path.parent) not in sys.path:  # modules may share helpers kept beside them
        sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if main is None:
        raise ImportError(f"{path.name} has no `async def main(args) -> dict`")
    bench_main: BenchMain = main
    return bench_main


def format_report(name: str, report: dict[str, Any]) -> str:
    lines = [f"── {name} " + "─" * max(3, 56 - len(name))]
    width = max((len(str(key)) for key in report), default=0)
    for key, value in report.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {str(key).ljust(width)}  {shown}")
    return "\n".join(lines)


def format_summary(reports: dict[str, dict[str, Any]]) -> str:
    """One line per benchmark: its headline figure, the target, and whether it was met."""
    rows = [("benchmark", "figure", "target", "met")]
    for name, report in reports.items():
        if "error" in report:
            rows.append((name, f"error: {report['error']}"[:60], "", "no"))
            continue
        met = report.get("met")
        rows.append((
            name,
            str(report.get("figure", "")),
            str(report.get("target", "")),
            "" if met is None else ("yes" if met else "NO"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["── summary " + "─" * 49]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def format_stolen(cpu: dict[str, dict[str, float]]) -> str:
    """A line per benchmark that ran while the hypervisor took 5 % or more of the CPU time."""
    lines = [f"  {name}: the hypervisor took {share['stolen_pct']:g} % of the machine's CPU "
             f"time (busy {share['busy_pct']:g} %): its figures are slower than this machine's "
             "own\n"
             for name, share in cpu.items() if share.get("stolen_pct", 0.0) >= STOLEN_NOTABLE]
    return "".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on, for the JSON file (ratios travel; seconds do not)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
            cwd=Path(__file__).resolve().parent, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    except OSError as exc:
        raise cannot_write(path, exc) from None


async def run_benchmarks(args: argparse.Namespace) -> int:
    folder = find_bench_dir()
    if folder is None:
        print("pimbot bench: no bench/bench_*.py found here or in the source tree", file=sys.stderr)
        return 1
    names = list(getattr(args, "names", None) or [])
    paths = discover(folder, getattr(args, "only", None), names)
    if not paths:
        known = ", ".join(p.stem.removeprefix("bench_") for p in discover(folder))
        print(f"pimbot bench: no benchmark in {folder} matches {' '.join(names) or args.only}; "
              f"there are: {known}", file=sys.stderr)
        return 1
    out = getattr(args, "out", None)
    if out and out != "-":
        check_writable(out)  # before minutes of benchmarks, not after
    started = machine()
    failed = 0
    reports: dict[str, dict[str, Any]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for path in paths:
        name = path.stem.removeprefix("bench_")
        before = read_cpu_times()
        try:
            report = await load_main(path)(args)
        except Exception as exc:
            log.exception("benchmark %s failed", name)
            report = {"error": f"{type(exc).__name__}: {exc}"}
            failed += 1
        reports[name] = report
        cpu[name] = shares(before, read_cpu_times())
        if not getattr(args, "json", False):
            print(format_report(name, report), flush=True)
    if getattr(args, "json", False):
        print(json.dumps(reports, indent=2, sort_keys=True, default=str))
    else:
        print(format_summary(reports), flush=True)
        print(format_stolen(cpu), flush=True, end="")
    if out and out != "-":
        document = {"machine": started, "quick": bool(getattr(args, "quick", False)),
                    "reports": reports, "cpu": cpu}
        _write_json(Path(out), document)
        if not getattr(args, "json", False):
            print(f"reports written to {out}", flush=True)
    return 1 if failed else 0
