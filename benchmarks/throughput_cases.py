"""Parts of the throughput benchmark beyond ``evaluate_batch``: ``evaluate --cases`` against
timeloop-model, and the kernel's compile/cache cost (see :mod:`benchmarks.throughput`).

* **Cases.** :func:`write_case_file` writes ``groups x per_group`` reference-format cases: the
  first ``groups`` distinct (layer, arch) pairs of ``tests/data/timeloop_cases.jsonl``, each with
  ``per_group`` random legal mappings (:func:`search.sampling.sample_mappings`, seeded), lines
  shuffled. :func:`time_cases` times ``codesign evaluate --cases`` on it in-process (best of
  ``repeats``; the output goes to ``/dev/null``) and once end to end as a new process (Python
  start-up, imports and the kernel's cache load included). :func:`time_timeloop` runs a sample of
  the same cases through timeloop-model v3.0.3 (``tl_eval.py``) in the same run and reports the
  model process's own wall time per case (``timeloop_seconds``: start-up, YAML parsing and
  evaluation) and the driver's.
* **Compile/cache.** :func:`time_first_call` runs a new process with an empty ``NUMBA_CACHE_DIR``
  (a fresh install: the kernel compiles) and then a second one with the same directory (the
  cache is loaded), timing ``import`` plus the first evaluation in each.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, _loadavg

CASES_FILE = ROOT / "tests" / "data" / "timeloop_cases.jsonl"
TL_ROOT = Path(os.environ.get("TIMELOOP_ROOT", "/opt/timeloop-v3.0.3"))
TL_EVAL = Path("/work/shared/timeloop-oracle/tl_eval.py")
TL_PYTHON = Path("/opt/oracle-venv/bin/python")


def write_case_file(path: Path, groups: int, per_group: int, seed: int) -> list[str]:
    """Write the case file; returns the (layer, arch) group names."""
    from formulation.model.encoding import decode
    from formulation.specs.loading import case_from_dict
    from search.results import mapping_list
    from search.sampling import sample_mappings

    firsts: dict[tuple[str, str], dict] = {}
    for line in CASES_FILE.read_text().splitlines():
        doc = json.loads(line)
        firsts.setdefault((doc["layer_name"], doc["arch_name"]), doc)
        if len(firsts) == groups:
            break
    rng = np.random.default_rng(seed)
    lines = []
    for g, doc in enumerate(firsts.values()):
        case = case_from_dict(doc)
        arrays = sample_mappings(case.layer, case.arch, per_group, rng)
        for i in range(arrays.size):
            lines.append(json.dumps({"id": f"g{g}-{i}", "layer_name": doc["layer_name"], "arch_name": doc["arch_name"],
                                     "layer": doc["layer"], "arch": doc["arch"],
                                     "mapping": mapping_list(case.arch, decode(arrays, case.arch, i))}))
    random.Random(seed).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return [f"{layer} on {arch}" for layer, arch in firsts]


def time_cases(path: Path, repeats: int) -> dict:
    """Seconds per case of ``evaluate --cases``: in-process (best of ``repeats``) and as a new process."""
    from codesign.cmd_evaluate import evaluate_cases

    n = sum(1 for line in path.read_text().splitlines() if line.strip())
    samples, cpu = [], []
    with open(os.devnull, "w") as sink:
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            status = evaluate_cases(path, False, sink)
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    assert status == 0
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "codesign", "evaluate", "--cases", str(path)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    process_s = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"throughput: evaluate --cases failed: {run.stderr.strip()}")
    return {"cases": n, "in_process_seconds_samples": samples, "in_process_cpu_seconds_samples": cpu,
            "in_process_us_per_case": min(samples) / n * 1e6, "in_process_cpu_us_per_case": min(cpu) / n * 1e6,
            "new_process_seconds": process_s, "new_process_us_per_case": process_s / n * 1e6,
            "load_average_1min": _loadavg()}


def time_timeloop(path: Path, sample: int, seed: int) -> dict | None:
    """timeloop-model's seconds per case on ``sample`` of the cases (None when Timeloop is not built here)."""
    if not (TL_ROOT / "bin" / "timeloop-model").exists() or not TL_EVAL.exists() or not TL_PYTHON.exists():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    chosen = random.Random(seed).sample(lines, min(sample, len(lines)))
    model_s, driver_s = [], []
    for line in chosen:
        start = time.perf_counter()
        run = subprocess.run([str(TL_PYTHON), str(TL_EVAL), "-"], input=line, capture_output=True, text=True,
                             env={**os.environ, "TIMELOOP_ROOT": str(TL_ROOT)}, timeout=600)
        driver_s.append(time.perf_counter() - start)
        result = json.loads(run.stdout) if run.returncode == 0 and run.stdout.strip() else {}
        if not result.get("ok"):
            raise SystemExit(f"throughput: timeloop-model failed on a case: {run.stderr.strip()[-300:]}")
        model_s.append(float(result["timeloop_seconds"]))
    return {"cases": len(chosen), "model_seconds_per_case": model_s, "driver_seconds_per_case": driver_s,
            "mean_model_s": float(np.mean(model_s)), "median_model_s": float(np.median(model_s)),
            "mean_driver_s": float(np.mean(driver_s)), "timeloop_root": str(TL_ROOT),
            "load_average_1min": _loadavg()}


_FIRST_CALL = """
import json, time
start = time.perf_counter()
from formulation.model.compiled import warm_up
imported = time.perf_counter() - start
call = warm_up()
print(json.dumps({"import_s": imported, "first_call_s": call, "total_s": time.perf_counter() - start}))
"""


def time_first_call() -> dict:
    """Import plus first evaluation in a new process: with an empty Numba cache, then with it filled."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        for label in ("fresh_cache", "warm_cache"):
            run = subprocess.run([sys.executable, "-c", _FIRST_CALL], cwd=ROOT, capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": cache})
            if run.returncode != 0:
                raise SystemExit(f"throughput: first-call probe failed: {run.stderr.strip()[-300:]}")
            out[label] = {**json.loads(run.stdout.strip().splitlines()[-1]), "load_average_1min": _loadavg()}
    return out
