"""Helpers every benchmark shares: machine facts, git state, load, cProfile rows, writing results."""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import cProfile
import json
import os
import platform
import pstats
import subprocess
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def machine_info() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "threads": {var: os.environ.get(var) for var in benchmarks.THREAD_ENV_VARS},
        "threads_pinned_before_numpy_import": benchmarks.THREADS_PINNED_BEFORE_NUMPY,
    }


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def profile_rows(profiler: cProfile.Profile) -> tuple[list[dict], float]:
    """Every profiled function as a row (own and cumulative time, share of the total), and the total."""
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = []
    for (filename, lineno, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        path = Path(filename)
        try:
            where = f"{path.resolve().relative_to(ROOT)}:{lineno}"
        except ValueError:
            where = filename if filename.startswith("~") else f"{path.name}:{lineno}"
        rows.append({"function": f"{where}({func})", "ncalls": ncalls, "tottime_s": round(tottime, 4),
                     "cumtime_s": round(cumtime, 4), "tottime_share": round(tottime / total, 4) if total else 0.0})
    return rows, total


def profile_call(fn: Callable[[], object], top: int) -> list[dict]:
    """The ``top`` functions by own time (cProfile ``tottime``) in one call of ``fn``."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    rows, _ = profile_rows(profiler)
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    return rows[:top]


def run_header(name: str, load_before: float | None) -> dict:
    """The fields every results file starts with: what, when, which commit, which machine, how loaded."""
    return {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "formulation_uncommitted_changes": bool(_git("status", "--porcelain", "--", "formulation")),
        "machine": machine_info(),
        "load_average_1min": {"before": load_before, "after": _loadavg()},
    }


def print_profile(title: str, rows: list[dict]) -> None:
    """Print profile rows (from :func:`profile_call`) under ``title``."""
    print(f"\n{title}")
    for p in rows:
        print(f"  {p['tottime_s']:>8.3f} s {p['tottime_share']:>6.1%}  {p['ncalls']:>6}  {p['function']}")


def add_output_arguments(parser, default: Path) -> None:
    """``--output`` (a list of runs), and ``--append`` or ``--overwrite`` for when it already holds runs."""
    parser.add_argument("--output", type=Path, default=default)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="add this run to the runs already in --output")
    mode.add_argument("--overwrite", action="store_true", help="replace the runs already in --output")


def output_error(args) -> str | None:
    """Why this run may not write ``args.output`` (checked before running: the runs there are a history
    the README quotes, so replacing them takes ``--overwrite``), or None."""
    if args.append or args.overwrite or not args.output.exists():
        return None
    return (f"--output = {str(args.output)!r} holds earlier runs: pass --append to add this run after them "
            f"or --overwrite to replace them")


def write_runs(result: dict, output: Path, append: bool) -> None:
    """Write ``result`` as the one run of ``output``, or (``append``) after the runs already there (a file
    holding a single run counts as one)."""
    runs = []
    if append and output.exists():
        old = json.loads(output.read_text())
        runs = old if isinstance(old, list) else [old]
    write_result(runs + [result], output)  # type: ignore[arg-type]


def write_result(result: dict, output: Path) -> None:
    """Write a results file (JSON) and say where."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {output}")
