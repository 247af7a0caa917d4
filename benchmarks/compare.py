"""Method comparison: ``codesign`` against the baselines, at the same wall-clock budget, template and area budget.

For every network, seed and method (run one after another; each may use ``--jobs`` processes):

* **single runs**: the method minimizes ``--objective`` (default EDP) under ``--area-budget`` through
  its registered method (:mod:`search.methods`, what ``codesign optimize --method`` runs), with
  ``--budget-s`` as the whole run's wall-clock budget. The best-so-far history is the baselines'
  ``extra["history"]``; for ``codesign`` it has one entry per finished start (taken when the
  start's result arrives), so codesign's time to a given quality is an upper bound.
* **front runs** (``--pareto N``, default 5; 0 to skip): the latency/power fronts of
  ``codesign --pareto N`` (ε-constraint: N latency caps plus the two ends), ``ga --pareto``
  (NSGA-II's archive of non-dominated designs) and ``weighted-sum --pareto N`` (N weights), each
  with the same ``--budget-s``. When fronts are computed, the weighted-sum row of the single-run
  table is its front run's best design for the objective (the weighted-sum method is its sweep;
  with ``--pareto 5`` that is exactly ``--method weighted-sum``).

Outputs: the raw results (``benchmarks/results/compare.json``: configuration, machine, commit,
load averages, every run with its totals, hardware, history and front), a generated report
(``benchmarks/RESULTS.md``: per-method tables with the mean and range over seeds, front
hypervolumes, and how the claims fare) and plots (``benchmarks/results/compare-<network>-fronts.png``,
``compare-<network>-edp-time.png``). ``--report-only`` regenerates the report and plots from the JSON.

Before the timed runs every method runs once for two seconds on a one-layer network (untimed;
``--no-warm-up`` skips it), so that no timed run pays for imports (pymoo, BoTorch) or for
starting worker processes.

The analysis, the report and the plots (hypervolumes, claims) are :mod:`benchmarks.compare_report`.

Run: ``python -m benchmarks compare [--help]``.
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import json
import math
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from dataclasses import replace

from benchmarks.common import _git, _loadavg, machine_info
from benchmarks.compare_report import DEFAULT_METHODS, FRONT_NAMES, _invocation, analyse, plot_network, report
from formulation.goals import Objective
from formulation.specs.catalog import load_network, load_template
from formulation.specs.types import Layer, Network, NetworkLayer, SpecError
from search.design import Goal
from search.methods import METHODS, RunOptions, get_method
from search.results import atomic_write_text, design_summary, score_document

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "compare.json"
DEFAULT_REPORT = HERE / "RESULTS.md"


# ---- running ----------------------------------------------------------------------------------------------

def _design(template, ev, counts) -> dict:
    return {"totals": score_document(ev, counts), "hardware": design_summary(template, ev)}


def run_single(method: str, network, template, goal, seed: int, opts: RunOptions) -> dict:
    counts = [e.count for e in network.layers]
    t0 = time.monotonic()
    history: list[tuple[float, int, float]] = []
    state = {"best": math.inf, "evaluations": 0}

    def on_start_done(res) -> None:  # codesign: one history entry per finished start
        state["evaluations"] += res.evaluations
        if res.best is not None and res.best.score.feasible:
            state["best"] = min(state["best"], res.best.score.value(goal.objective))
        history.append((time.monotonic() - t0, state["evaluations"], state["best"]))

    result = get_method(method).run(network, template, goal, opts, on_start_done)
    elapsed = time.monotonic() - t0
    record = {"status": result.status.value, "pipeline": result.method, "wall_s": result.wall_s,
              "elapsed_s": elapsed, "evaluations": result.evaluations,
              "history": [list(h) for h in (result.extra.get("history") or history)],
              "history_source": "baseline" if result.extra.get("history") else "finished starts"}
    if result.best is not None:
        record.update(_design(template, result.best, counts))
    return record


def run_front(method: str, network, template, goal, seed: int, n_points: int,
              opts: RunOptions) -> tuple[dict, dict | None]:
    """The front run's record, and for weighted-sum also the single-run record of its best design."""
    counts = [e.count for e in network.layers]
    t0 = time.monotonic()
    front = get_method(method).pareto(network, template, goal, n_points, opts, lambda _res: None).front
    elapsed = time.monotonic() - t0
    record = {"front_method": FRONT_NAMES[method], "n_points": n_points, "status": front.status.value,
              "wall_s": front.wall_s, "elapsed_s": elapsed, "evaluations": front.evaluations,
              "candidates": len(front.candidates),
              "front": [{"run": p.run, **design_summary(template, p.evaluated)} for p in front.points]}
    single = None
    if method == "weighted-sum":
        run = front.runs[0].result
        feasible = [p.evaluated for p in front.candidates if p.evaluated.score.feasible]
        best = min(feasible, key=lambda ev: ev.score.value(goal.objective)) if feasible else None
        single = {"status": run.status.value, "pipeline": run.method, "wall_s": run.wall_s, "elapsed_s": elapsed,
                  "evaluations": run.evaluations, "history": [list(h) for h in run.extra.get("history", [])],
                  "history_source": "baseline", "from_front": True}
        if best is not None:
            single.update(_design(template, best, counts))
    return record, single


def _template(spec: str):
    """The template ``codesign optimize --arch-template`` would use."""
    return load_template(spec)


def warm_up(methods: list[str], template, goal, opts: RunOptions) -> dict:
    """Run every method once for a moment on a one-layer network, untimed, so that no timed run pays for imports
    (pymoo, BoTorch), worker-process start-up or first-call set-up. Returns the seconds each took."""
    network = Network("warm-up", (NetworkLayer(Layer("warm-up", N=1, C=16, K=16, P=7, Q=7, R=3, S=3), 1),))
    seconds = {}
    for method in methods:
        entry = METHODS.get(method)
        if entry is None:
            continue
        t0 = time.monotonic()
        try:
            entry.run(network, template, goal, replace(opts, seed=0, time_limit_s=2.0), lambda _res: None)
        except Exception:  # noqa: BLE001  (the timed run will record the error)
            pass
        seconds[method] = round(time.monotonic() - t0, 2)
    return seconds


def _base_record(network: str, method: str, kind: str, seed: int, budget_s: float) -> dict:
    return {"network": network, "method": method, "kind": kind, "seed": seed, "budget_s": budget_s,
            "error": None, "load_1min_before": _loadavg()}


def run_suite(args, doc: dict, output: Path) -> int:
    template = _template(args.arch_template)
    goal = Goal(Objective(args.objective), args.area_budget)
    opts = RunOptions(starts=args.starts, jobs=args.jobs, time_limit_s=args.budget_s)
    status = 0
    if args.warm_up:
        print("warm-up (untimed): " + ", ".join(args.methods), flush=True)
        doc["warm_up_s"] = warm_up(args.methods, template, goal, replace(opts, seed=0))
    for net_name in args.networks:
        network = load_network(net_name)
        for seed in args.seeds:
            opts = replace(opts, seed=seed)
            plan = []
            for method in args.methods:
                if not (method == "weighted-sum" and args.pareto):
                    plan.append((method, "single"))
                if args.pareto and method in FRONT_NAMES:
                    plan.append((method, "front"))
            for method, kind in plan:
                rec = _base_record(network.name, method, kind, seed, args.budget_s)
                label = f"{network.name} seed {seed} {method}" + (" --pareto" if kind == "front" else "")
                print(f"[{time.strftime('%H:%M:%S')}] {label} (budget {args.budget_s:g} s, load "
                      f"{rec['load_1min_before']})", flush=True)
                extra = None
                try:
                    if method not in METHODS:
                        raise RuntimeError(f"method {method} is not registered (available: "
                                           f"{', '.join(sorted(METHODS))})")
                    if kind == "single":
                        rec.update(run_single(method, network, template, goal, seed, opts))
                    else:
                        front, single = run_front(method, network, template, goal, seed, args.pareto,
                                                  replace(opts, starts=args.front_starts))
                        rec.update(front)
                        if single is not None:
                            extra = {**_base_record(network.name, method, "single", seed, args.budget_s),
                                     "load_1min_before": rec["load_1min_before"], **single}
                except KeyboardInterrupt:
                    rec["error"] = "interrupted"
                    doc["runs"].append(rec)
                    _write(output, doc)
                    return 130
                except Exception as exc:  # noqa: BLE001  (recorded; the suite goes on)
                    rec["error"] = f"{type(exc).__name__}: {exc}"
                    status = 1
                rec["load_1min_after"] = _loadavg()
                doc["runs"].append(rec)
                if extra is not None:
                    extra["load_1min_after"] = rec["load_1min_after"]
                    doc["runs"].append(extra)
                _print_run(rec)
                if extra is not None:
                    _print_run(extra)
                _write(output, doc)
    return status


def _print_run(rec: dict) -> None:
    what = f"  {rec['method']} {rec['kind']}"
    if rec["error"]:
        print(f"{what}: error {rec['error']}", flush=True)
    elif rec["kind"] == "front":
        print(f"{what}: {len(rec['front'])} front points, {rec['wall_s']:.1f} s, {rec['evaluations']:,} evaluations",
              flush=True)
    elif rec.get("totals"):
        print(f"{what}: EDP {rec['totals']['edp']:.4g} pJ*s, {rec['wall_s']:.1f} s, "
              f"{rec['evaluations']:,} evaluations ({rec['status']})", flush=True)
    else:
        print(f"{what}: no feasible design ({rec['status']})", flush=True)


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, default=float) + "\n")


def finish(doc: dict, output: Path, report_path: Path, plots_dir: Path) -> None:
    doc["analysis"] = analyse(doc)
    doc["plots"] = []
    for net in doc["analysis"]:
        doc["plots"] += plot_network(doc, net, plots_dir)
    _write(output, doc)
    report(doc, output, report_path, plots_dir)




# ---- command line -----------------------------------------------------------------------------------------

def _list(value: str, kind=str) -> list:
    return [kind(v.strip()) for v in value.split(",") if v.strip()]


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="resnet18", type=_list, help="comma-separated networks (default resnet18)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), type=_list,
                   help="comma-separated methods of codesign optimize --method (default %(default)s)")
    p.add_argument("--seeds", default="0,1", type=lambda v: _list(v, int), help="comma-separated seeds (default 0,1)")
    p.add_argument("--budget-s", default=60.0, type=float, help="wall-clock budget of every run (default 60)")
    p.add_argument("--objective", default="edp", help="objective of the single runs (default edp)")
    p.add_argument("--area-budget", default=2.0, type=float, help="area budget in mm2 (default 2.0)")
    p.add_argument("--arch-template", default="simple", help="template (as codesign optimize; default simple)")
    p.add_argument("--pareto", default=5, type=int, help="front points / weights (default 5; 0: no front runs)")
    p.add_argument("--jobs", default=2, type=int, help="worker processes per run (default 2)")
    p.add_argument("--starts", default=4, type=int, help="codesign starts of the single runs (default 4)")
    p.add_argument("--front-starts", default=2, type=int,
                   help="codesign starts per run of its epsilon-constraint front (default 2: one per worker, so each "
                   "of the N+2 runs gives every start its whole share of the budget)")
    p.add_argument("--output", default=str(DEFAULT_OUTPUT), help="raw results JSON (default %(default)s)")
    p.add_argument("--report", default=str(DEFAULT_REPORT), help="generated report (default %(default)s)")
    p.add_argument("--plots-dir", default=None, help="where the PNGs go (default: the folder of --output)")
    p.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                   help="skip the untimed warm-up run of every method (imports, worker processes)")
    p.add_argument("--append", action="store_true",
                   help="add these runs to an existing --output (more networks, seeds or methods; the budget and "
                   "the other settings must match)")
    p.add_argument("--report-only", action="store_true", help="regenerate the report and plots from --output")
    return p.parse_args(argv)


def _check(args) -> str | None:
    """What is wrong with the options (before any run starts), or None."""
    try:
        Objective(args.objective)
    except ValueError:
        return f"--objective = {args.objective!r}: use one of {', '.join(o.value for o in Objective)}"
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        return f"--methods: {', '.join(unknown)} not registered (available: {', '.join(sorted(METHODS))})"
    try:
        for name in args.networks:
            load_network(name)
        _template(args.arch_template)
    except SpecError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    output, report_path = Path(args.output), Path(args.report)
    plots_dir = Path(args.plots_dir) if args.plots_dir else output.parent
    if args.report_only:
        doc = json.loads(output.read_text())
        finish(doc, output, report_path, plots_dir)
        print(f"wrote {report_path}")
        return 0
    if (args.pareto < 0 or args.budget_s <= 0 or args.jobs < 1 or min(args.starts, args.front_starts) < 1
            or not args.seeds):
        print("benchmarks compare: error: --pareto >= 0, --budget-s > 0, --jobs >= 1, --starts and --front-starts "
              ">= 1 and at least one seed", file=sys.stderr)
        return 2
    problem = _check(args)
    if problem:
        print(f"benchmarks compare: error: {problem}", file=sys.stderr)
        return 2
    dirty = _git("status", "--porcelain", "--", "search", "formulation", "benchmarks/compare.py")
    doc = {"benchmark": "compare", "command": "python -m benchmarks compare " + shlex.join(argv or sys.argv[1:]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": _git("rev-parse", "--short",
                                                                                             "HEAD"),
           "dirty": bool(dirty), "machine": machine_info(),
           "config": {"networks": args.networks, "methods": args.methods, "seeds": args.seeds,
                      "budget_s": args.budget_s, "objective": args.objective, "area_budget_mm2": args.area_budget,
                      "arch_template": args.arch_template, "pareto": args.pareto, "jobs": args.jobs,
                      "starts": args.starts, "front_starts": args.front_starts},
           "load_1min_start": _loadavg(), "runs": []}
    if args.append and output.exists():
        old = json.loads(output.read_text())
        old_config = old["config"]
        fixed = [k for k in doc["config"] if k not in MERGED and old["config"].get(k) != doc["config"][k]]
        if fixed:
            print(f"benchmarks compare: error: --append: {', '.join(fixed)} differ from {output} "
                  f"(there: {', '.join(f'{k} = {old_config.get(k)}' for k in fixed)})",
                  file=sys.stderr)
            return 2
        old.setdefault("invocations", [_invocation(old)])
        for key in MERGED:
            old["config"][key] += [v for v in doc["config"][key] if v not in old["config"][key]]
        doc, invocation = old, doc
    else:
        invocation = doc
    t0 = time.monotonic()
    status = run_suite(args, doc, output)
    invocation["total_wall_s"] = time.monotonic() - t0
    invocation["load_1min_end"] = _loadavg()
    if invocation is not doc:
        doc["invocations"].append(_invocation(invocation))
    finish(doc, output, report_path, plots_dir)
    print(f"wrote {output}, {report_path} and {', '.join(doc['plots'])} ({invocation['total_wall_s']:.0f} s in all)")
    return status


MERGED = ("networks", "methods", "seeds")  # what --append may extend; the rest of the configuration must match


if __name__ == "__main__":
    sys.exit(main())
