"""``pimbot bench``: run every ``bench/bench_*.py`` module's ``async def main(args) -> dict``.

The ``bench/`` folder is looked for in the current directory, then in the source tree this
package was installed from (an editable install). Each report is printed as it finishes;
a benchmark that raises is reported and makes the exit code 1. See docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

BenchMain = Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]


def find_bench_dir(cwd: Path | None = None) -> Path | None:
    here = (cwd or Path.cwd()) / "bench"
    source_tree = Path(__file__).resolve().parents[2] / "bench"
    for candidate in (here, source_tree):
        if candidate.is_dir() and any(candidate.glob("bench_*.py")):
            return candidate
    return None


def discover(folder: Path, only: str | None = None, names: list[str] | None = None
             ) -> list[Path]:
    """``names``: exact benchmark names (``burst`` for bench_burst.py); ``only``: a part."""
    found = sorted(folder.glob("bench_*.py"))
    return [path for path in found if (only is None or only in path.stem)
            and (not names or path.stem.removeprefix("bench_") in names)]


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


async def run_benchmarks(args: argparse.Namespace) -> int:
    folder = find_bench_dir()
    if folder is None:
        print("pimbot bench: no bench/bench_*.py found here or in the source tree", file=sys.stderr)
        return 1
    paths = discover(folder, getattr(args, "only", None), getattr(args, "names", None))
    if not paths:
        print(f"pimbot bench: no benchmark in {folder} matches --only", file=sys.stderr)
        return 1
    failed = 0
    reports: dict[str, dict[str, Any]] = {}
    for path in paths:
        name = path.stem.removeprefix("bench_")
        try:
            report = await load_main(path)(args)
        except Exception as exc:
            log.exception("benchmark %s failed", name)
            report = {"error": f"{type(exc).__name__}: {exc}"}
            failed += 1
        reports[name] = report
        if not getattr(args, "json", False):
            print(format_report(name, report), flush=True)
    if getattr(args, "json", False):
        print(json.dumps(reports, indent=2, sort_keys=True, default=str))
    return 1 if failed else 0
