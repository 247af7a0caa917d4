"""Run the adversarial corpus as real subprocesses and classify every outcome.

Classes: ``good`` (what the entry expects), ``traceback`` (a Python traceback on stderr), ``hang`` (killed at
the entry's timeout), ``silent-accept`` (a bad input answered with exit 0, non-strict JSON, non-finite numbers
or a file outside ``--out``), ``wrong-rejection`` (a valid input refused with exit 2), ``unclear`` (refused,
but not with one ``codesign: error:`` line and exit 2). Results go to ``benchmarks/results/adversarial-LABEL.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.adversarial.corpus import Entry, entries, materialize

ROOT = Path(__file__).resolve().parents[2]
ABSOLUTE_ESCAPES = [Path("/tmp/codesign-abs-escape"), Path("/tmp/abs-escape-codesign"), Path("/abs")]


def _files(d: Path) -> set[Path]:
    return {p for p in d.rglob("*")} if d.exists() else set()


def _strict_json(text: str) -> bool:
    def reject(constant):
        raise ValueError(constant)

    lines = [line for line in text.splitlines() if line.strip()]
    try:
        json.loads(text, parse_constant=reject)
        return True
    except ValueError:
        pass
    try:
        for line in lines:
            json.loads(line, parse_constant=reject)
        return True
    except ValueError:
        return False


def classify(entry: Entry, rc: int | None, stdout: str, stderr: str, outside: list[str]) -> str:
    if rc is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    problems = []
    if outside:
        problems.append("outside")
    if "json" in entry.checks and rc == 0 and stdout.strip() and not _strict_json(stdout):
        problems.append("json")
    if rc == 0 and any(tok in stdout.lower().split() for tok in ("nan", "inf", "-inf")):
        problems.append("finite")
    error_lines = [line for line in stderr.splitlines() if line.startswith("codesign: error:")
                   or line.startswith("usage:") is False and "error:" in line]
    one_line_error = rc == 2 and len([line for line in stderr.splitlines() if "error" in line]) == 1
    if entry.expect == "error":
        if rc == 0 or problems:
            return "silent-accept"
        return "good" if one_line_error else "unclear"
    if problems:
        return "silent-accept"
    if entry.expect == "ok":
        return "good" if rc == 0 else ("wrong-rejection" if rc == 2 else "unclear")
    if entry.expect == "no-design":
        return "good" if rc == 1 else ("wrong-rejection" if rc == 2 else "unclear")
    del error_lines
    return "good" if rc == 0 or one_line_error or rc == 1 else "unclear"


def run_entry(entry: Entry, python: str) -> dict:
    d = Path(tempfile.mkdtemp(prefix="adv-"))
    try:
        materialize(entry, d)
        cwd = d / "cwd" / "a" / "b"
        cwd.mkdir(parents=True)
        before = _files(d)
        argv = [a.replace("{d}", str(d)) for a in entry.argv]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        try:
            proc = subprocess.run([python, "-m", "codesign", *argv], cwd=cwd, env=env, capture_output=True,
                                  timeout=entry.timeout_s)
            rc, out, err = proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as exc:
            rc, out, err = None, (exc.stdout or b"").decode(errors="replace"), (exc.stderr or b"").decode(errors="replace")
        wall = time.monotonic() - t0
        new = _files(d) - before
        out_dir = Path(argv[argv.index("--out") + 1]) if "--out" in argv else d / "out"
        if not out_dir.is_absolute():
            out_dir = cwd / out_dir
        outside = sorted(str(p.relative_to(d)) for p in new if not p.is_dir()
                         and not str(p).startswith(str(out_dir) + os.sep))
        for path in ABSOLUTE_ESCAPES:
            if path.exists():
                outside.append(str(path))
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        klass = classify(entry, rc, out, err, outside)
        tail = [line for line in err.splitlines() if line.strip()][-1:] or [""]
        return {"id": entry.id, "expect": entry.expect, "rc": rc, "class": klass, "wall_s": round(wall, 2),
                "stderr_last": tail[0][:300], "stderr_lines": len(err.splitlines()), "outside": outside[:5]}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str]) -> int:
    heldout = "--heldout" in argv
    argv = [a for a in argv if a != "--heldout"]
    label = argv[0] if argv else "run"
    only = set(argv[1:])
    python = sys.executable
    rows = []
    if heldout:
        from benchmarks.adversarial.heldout import entries as heldout_entries

        label = f"heldout-{label}"
    for entry in (heldout_entries() if heldout else entries()):
        if only and entry.id not in only:
            continue
        row = run_entry(entry, python)
        rows.append(row)
        print(f"{row['class']:<16}{row['rc']!s:>5} {row['wall_s']:>6.1f}s  {entry.id}: {row['stderr_last'][:110]}",
              flush=True)
    counts = Counter(r["class"] for r in rows)
    try:
        from benchmarks.common import run_header

        header = run_header("adversarial", None)
    except ImportError:  # a checkout without benchmarks.common (the "before" runs on commit cf1d043 had it)
        header = {}
    doc = {**header, "label": label, "entries": len(rows), "counts": dict(counts), "rows": rows}
    out = ROOT / "benchmarks" / "results" / f"adversarial-{label}.json"
    if not only:
        out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(dict(counts)), "->", out if not only else "(subset, not written)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
