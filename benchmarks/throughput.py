"""Model throughput: mapping evaluations per second of ``evaluate_batch`` on one core, single-mapping
latency, ``evaluate --cases`` against timeloop-model, and the compiled kernel's first-call cost.

Workload: the ResNet-18 stage-1 3x3 convolution (N=1, C=K=64, P=Q=56, R=S=3, stride 1; the layer
of reference case ``public-0000``) on the ``simple`` 16x16 architecture (built-in
``formulation.specs.catalog.load_arch("simple")`` when that module is there, else the identical
``simple-16x16`` arch of case ``public-0000``).

Steps: sample ``--samples`` random legal mappings once (:func:`search.sampling.sample_mappings`,
seeded), then time :func:`formulation.model.exact.evaluate_batch` on the first ``B`` of them for every
batch size ``B``. Each timing sample repeats the call until it lasts at least ``--min-time``
seconds; the best of ``--repeats`` samples is reported, as mappings per second and microseconds
per mapping. One call of :func:`formulation.model.exact.evaluate` on a single decoded mapping is timed
the same way. Results go to ``benchmarks/results/throughput.json`` with the machine (CPU model,
cores, NumPy version, date, git commit) and, unless ``--no-profile``, the top cProfile entries of
one ``evaluate_cases`` call (the case-file path is Python: parsing and JSON output; the batch path
is the compiled kernel, which cProfile cannot see into).

``evaluate --cases``, timeloop-model and the first-call cost are measured by
:mod:`benchmarks.throughput_cases` (``--cases 0`` skips the case part, ``--timeloop-sample 0``
Timeloop, ``--no-first-call`` the compile probe). The 1-minute load average is recorded with
every part: the machine is shared, and a loaded machine stretches the wall-clock numbers.

Run: ``python -m benchmarks throughput [--help]`` (or ``make bench``, which runs every benchmark).
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import gc
import os
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from formulation.model.encoding import decode
from formulation.specs.loading import case_from_dict
from formulation.model.exact import evaluate, evaluate_batch
from formulation.specs.types import Architecture, Layer
from search.sampling import sample_mappings

from benchmarks.common import run_header, ROOT, _loadavg, profile_call, write_result
from benchmarks import throughput_cases

CASES_FILE = ROOT / "tests" / "data" / "timeloop_cases.jsonl"
CASE_ID = "public-0000"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "throughput.json"
DEFAULT_SIZES = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
GOAL_MAPPINGS_PER_S = 1_000_000
GOAL_SINGLE_US = 20.0
GOAL_FIRST_CALL_S = 5.0
GOAL_SPEEDUP_VS_TIMELOOP = 1000.0


def load_workload() -> tuple[Layer, Architecture, dict[str, str]]:
    """The benchmark layer and architecture, with where each came from."""
    case_doc = None
    for line in CASES_FILE.read_text().splitlines():
        if line.strip() and json.loads(line).get("id") == CASE_ID:
            case_doc = json.loads(line)
            break
    if case_doc is None:
        raise SystemExit(f"throughput: case {CASE_ID} not found in {CASES_FILE}")
    case = case_from_dict(case_doc)
    layer, arch = case.layer, case.arch
    sources = {"layer": f"{CASES_FILE.relative_to(ROOT)}#{CASE_ID}",
               "arch": f"{CASES_FILE.relative_to(ROOT)}#{CASE_ID}"}
    try:
        from formulation.specs.catalog import load_arch
    except ImportError:
        pass
    else:
        arch = load_arch("simple")
        sources["arch"] = 'formulation.specs.catalog.load_arch("simple")'
    assert layer.dims == (1, 64, 64, 56, 56, 3, 3), layer
    return layer, arch, sources


def time_call(fn: Callable[[], object], min_time: float, repeats: int) -> dict:
    """Best-of-``repeats`` seconds per call; each sample repeats ``fn`` for at least ``min_time`` s.

    Wall-clock time is the reported figure; process CPU time is recorded next to it because on
    a shared machine other processes stretch the wall clock but not the CPU time.
    """
    start = time.perf_counter()
    fn()  # warm-up, and calibration of the number of calls per sample
    once = time.perf_counter() - start
    calls = max(1, math.ceil(min_time / max(once, 1e-9)))
    samples, cpu_samples = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            samples.append((time.perf_counter() - start) / calls)
            cpu_samples.append((time.process_time() - cpu_start) / calls)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"calls_per_sample": calls, "seconds_per_call_samples": samples, "best_seconds_per_call": min(samples),
            "cpu_seconds_per_call_samples": cpu_samples, "best_cpu_seconds_per_call": min(cpu_samples)}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks throughput",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=max(DEFAULT_SIZES),
                        help="random legal mappings to sample (default %(default)s)")
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="comma-separated batch sizes (default %(default)s)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timing sample (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timing samples, best one reported (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON (default %(default)s)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--no-profile", action="store_true", help="skip profiling the largest batch")
    parser.add_argument("--profile-top", type=int, default=15, help="profile entries to keep (default %(default)s)")
    parser.add_argument("--cases", type=int, default=20_000,
                        help="cases for the evaluate --cases timing, over --groups (layer, arch) pairs; 0 skips "
                             "(default %(default)s)")
    parser.add_argument("--groups", type=int, default=10, help="(layer, arch) groups of the cases (default %(default)s)")
    parser.add_argument("--case-repeats", type=int, default=2, help="in-process case timings, best reported "
                                                                    "(default %(default)s)")
    parser.add_argument("--timeloop-sample", type=int, default=20,
                        help="cases run through timeloop-model in the same run; 0 skips (default %(default)s)")
    parser.add_argument("--no-first-call", action="store_true", help="skip the fresh/warm Numba cache probe")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes = {args.sizes!r}: must be comma-separated positive integers")
    if not args.sizes or args.sizes[0] < 1:
        parser.error(f"--sizes = {args.sizes!r}: must be positive integers")
    if args.samples < args.sizes[-1]:
        parser.error(f"--samples = {args.samples}: must be at least the largest batch size {args.sizes[-1]}")
    if args.repeats < 1 or args.min_time < 0:
        parser.error("--repeats must be >= 1 and --min-time >= 0")
    return args


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def _measure_cases(args: argparse.Namespace) -> dict | None:
    """The ``evaluate --cases`` part (and the Timeloop comparison) on a temporary case file."""
    import tempfile

    if args.cases <= 0:
        return None
    per_group = -(-args.cases // args.groups)
    with tempfile.TemporaryDirectory(prefix="throughput-cases-") as tmp:
        path = Path(tmp) / "cases.jsonl"
        print(f"  writing {per_group * args.groups:,} cases of {args.groups} (layer, arch) groups", flush=True)
        groups = throughput_cases.write_case_file(path, args.groups, per_group, args.seed)
        print("  timing evaluate --cases", flush=True)
        timing = throughput_cases.time_cases(path, args.case_repeats)
        profile = None
        if not args.no_profile:
            from codesign.cmd_evaluate import evaluate_cases

            with open(os.devnull, "w") as sink:
                profile = {"tool": "cProfile", "sort": "tottime",
                           "top": profile_call(lambda: evaluate_cases(path, False, sink), args.profile_top)}
        timeloop = None
        if args.timeloop_sample > 0:
            print(f"  timing timeloop-model on {args.timeloop_sample} of the cases", flush=True)
            timeloop = throughput_cases.time_timeloop(path, args.timeloop_sample, args.seed)
    speedup = None
    if timeloop is not None:
        speedup = {"in_process": timeloop["mean_model_s"] / (timing["in_process_us_per_case"] * 1e-6),
                   "new_process": timeloop["mean_model_s"] / (timing["new_process_us_per_case"] * 1e-6)}
    return {"groups": groups, **timing, "timeloop": timeloop, "speedup_vs_timeloop_model": speedup,
            "profile": profile}


def _goals(best_rate: float, single: dict, cases: dict | None, first_call: dict | None) -> dict:
    speed = (cases or {}).get("speedup_vs_timeloop_model") or {}
    fresh = (first_call or {}).get("fresh_cache", {}).get("total_s")
    warm = (first_call or {}).get("warm_cache", {}).get("total_s")
    return {
        "batch_mappings_per_s": {"goal": GOAL_MAPPINGS_PER_S, "measured": best_rate,
                                 "met": best_rate >= GOAL_MAPPINGS_PER_S},
        "single_us": {"goal": GOAL_SINGLE_US, "measured": single["us_per_mapping"],
                      "met": single["us_per_mapping"] <= GOAL_SINGLE_US},
        "first_call_s": {"goal": GOAL_FIRST_CALL_S, "fresh_cache": fresh, "warm_cache": warm,
                         "met_fresh": None if fresh is None else fresh < GOAL_FIRST_CALL_S,
                         "met_warm": None if warm is None else warm < GOAL_FIRST_CALL_S},
        "cases_speedup_vs_timeloop": {"goal": GOAL_SPEEDUP_VS_TIMELOOP, "in_process": speed.get("in_process"),
                                      "new_process": speed.get("new_process"),
                                      "met": None if not speed else speed["in_process"] >= GOAL_SPEEDUP_VS_TIMELOOP},
    }


def _print_parts(result: dict) -> None:
    cases, first = result["evaluate_cases"], result["first_call"]
    if cases:
        print(f"evaluate --cases: {cases['cases']:,} cases, {cases['in_process_us_per_case']:.1f} us/case in-process "
              f"({cases['in_process_cpu_us_per_case']:.1f} us CPU), {cases['new_process_us_per_case']:.1f} us/case "
              f"as a new process")
        if cases["timeloop"]:
            tl = cases["timeloop"]
            print(f"timeloop-model: {tl['mean_model_s'] * 1e3:.1f} ms/case (process), {tl['mean_driver_s'] * 1e3:.1f} "
                  f"ms with its driver, over {tl['cases']} cases; speedup {cases['speedup_vs_timeloop_model']}")
    if first:
        print(f"first call in a new process: fresh cache {first['fresh_cache']['total_s']:.2f} s, "
              f"warm cache {first['warm_cache']['total_s']:.2f} s")
    for name, goal in result["goals"].items():
        print(f"goal {name}: {goal}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    layer, arch, sources = load_workload()
    load_before = _loadavg()
    print(f"throughput: layer {layer.name} {layer.dims} on arch {arch.name}; sampling {args.samples:,} "
          f"mappings (seed {args.seed})", flush=True)

    from formulation.model.compiled import warm_up

    first_call_in_process_s = warm_up()  # load (or compile) the kernel before anything is timed
    start = time.perf_counter()
    arrays = sample_mappings(layer, arch, args.samples, np.random.default_rng(args.seed))
    sample_s = time.perf_counter() - start

    rows = []
    for size in args.sizes:
        batch = arrays.take(slice(0, size))
        timing = time_call(lambda: evaluate_batch(layer, arch, batch), args.min_time, args.repeats)
        best = timing["best_seconds_per_call"]
        rows.append({"batch": size, **timing, "mappings_per_s": size / best, "us_per_mapping": best / size * 1e6,
                     "cpu_us_per_mapping": timing["best_cpu_seconds_per_call"] / size * 1e6})
        print(f"  batch {size:>7,}: {_fmt_rate(size / best):>10} mappings/s", flush=True)

    mapping = decode(arrays, arch, 0)
    single = time_call(lambda: evaluate(layer, arch, mapping), args.min_time, args.repeats)
    single.update(mappings_per_s=1 / single["best_seconds_per_call"],
                  us_per_mapping=single["best_seconds_per_call"] * 1e6,
                  cpu_us_per_mapping=single["best_cpu_seconds_per_call"] * 1e6)

    largest = arrays.take(slice(0, args.sizes[-1]))
    fits = bool(evaluate_batch(layer, arch, largest).fits.all())
    cases = _measure_cases(args)
    first_call = None if args.no_first_call else throughput_cases.time_first_call()

    best_rate = max(r["mappings_per_s"] for r in rows)
    result = {
        **run_header("throughput", load_before),
        "workload": {"layer": layer.name, "layer_dims_NKCPQRS": list(layer.dims), "macs": layer.macs,
                     "arch": arch.name, "sources": sources},
        "sampling": {"mappings": args.samples, "seed": args.seed, "bypass": True, "seconds": sample_s,
                     "mappings_per_s": args.samples / sample_s, "all_fit": fits},
        "timing": {"min_time_s": args.min_time, "repeats": args.repeats, "statistic": "best of repeats"},
        "evaluate_batch": rows,
        "evaluate_single": single,
        "first_call_in_process_s": first_call_in_process_s,
        "evaluate_cases": cases,
        "first_call": first_call,
        "goals": _goals(best_rate, single, cases, first_call),
        "best_mappings_per_s": best_rate,
        "profile": cases.get("profile") if cases else None,
    }

    print()
    print(f"evaluate_batch throughput, {layer.name} on {arch.name}, 1 thread, best of {args.repeats}")
    print(f"  CPU {result['machine']['cpu_model']} ({result['machine']['usable_cpus']} cores usable), "
          f"NumPy {np.__version__}")
    header = (f"{'batch':>9}  {'calls/sample':>12}  {'s/call':>10}  {'mappings/s':>12}  {'us/mapping':>11}  "
              f"{'CPU us/mapping':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['batch']:>9,}  {r['calls_per_sample']:>12,}  {r['best_seconds_per_call']:>10.4g}  "
              f"{_fmt_rate(r['mappings_per_s']):>12}  {r['us_per_mapping']:>11.2f}  {r['cpu_us_per_mapping']:>14.2f}")
    print(f"{'evaluate':>9}  {single['calls_per_sample']:>12,}  {single['best_seconds_per_call']:>10.4g}  "
          f"{_fmt_rate(single['mappings_per_s']):>12}  {single['us_per_mapping']:>11.2f}  "
          f"{single['cpu_us_per_mapping']:>14.2f}   (one Mapping)")
    print(f"sampling: {args.samples:,} legal mappings in {sample_s:.2f} s "
          f"({_fmt_rate(args.samples / sample_s)} mappings/s)")
    _print_parts(result)
    if not args.no_write:
        write_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
