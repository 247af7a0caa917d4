"""Method comparison: ``codesign`` against the baselines, at the same wall-clock budget, template and area budget.

For every network, seed and method (run one after another; each may use ``--jobs`` processes):

* **single runs**: the method minimizes ``--objective`` (default EDP) under ``--area-budget`` through
  its ``codesign optimize --method`` entry (:data:`codesign.cli.OPTIMIZE_METHODS`), with
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

Hypervolume: per network, in log10 space of (latency, power), normalized to [0, 1] by the box
from the ideal point (the smallest latency and the smallest power of any front point of any method
and seed) to the common reference point (the largest latency and power of any front point, pushed
out by 10 % of the log range). Larger is better.

Run: ``python -m benchmarks compare [--help]``.
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import _git, _loadavg, machine_info

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "compare.json"
DEFAULT_REPORT = HERE / "RESULTS.md"
DEFAULT_METHODS = ("codesign", "ga", "bo", "random", "weighted-sum")
FRONT_NAMES = {"codesign": "epsilon-constraint", "ga": "nsga2", "weighted-sum": "weighted-sum"}
COLORS = {"codesign": "C0", "ga": "C1", "bo": "C2", "random": "C7", "weighted-sum": "C3"}
TARGET_EDP_RATIO = 1.5
TARGET_SPEEDUP = 6.0
HV_MARGIN = 0.1


# ---- measures ---------------------------------------------------------------------------------------------

def hypervolume(points, ideal: tuple[float, float], ref: tuple[float, float]) -> float:
    """Share of the log10 box ``[ideal, ref]`` that the (latency, power) ``points`` dominate (0..1)."""
    lx0, ly0, lx1, ly1 = (math.log10(v) for v in (*ideal, *ref))
    box = (lx1 - lx0) * (ly1 - ly0)
    if box <= 0:
        return 0.0
    pts = sorted((math.log10(x), math.log10(y)) for x, y in points if 0 < x < ref[0] and 0 < y < ref[1])
    area, floor = 0.0, ly1
    for x, y in pts:  # by latency: each point not dominated adds the strip below the previous ones
        if y < floor:
            area += (lx1 - max(x, lx0)) * (floor - max(y, ly0))
            floor = y
    return area / box


def time_to_reach(history, target: float) -> float | None:
    """Wall time of the first history entry ``(wall_s, evaluations, best)`` whose best is at or below ``target``."""
    for wall, _, best in history:
        if best <= target * (1 + 1e-9):
            return float(wall)
    return None


def geomean(values):
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


# ---- running ----------------------------------------------------------------------------------------------

def _design(template, ev, counts) -> dict:
    from search.results import design_summary, score_document

    return {"totals": score_document(ev, counts), "hardware": design_summary(template, ev)}


def run_single(method: str, network, template, goal, seed: int, opts: dict) -> dict:
    from codesign.cli import OPTIMIZE_METHODS

    counts = [e.count for e in network.layers]
    t0 = time.monotonic()
    history: list[tuple[float, int, float]] = []
    state = {"best": math.inf, "evaluations": 0}

    def on_start_done(res) -> None:  # codesign: one history entry per finished start
        state["evaluations"] += res.evaluations
        if res.best is not None and res.best.score.feasible:
            state["best"] = min(state["best"], res.best.score.value(goal.objective))
        history.append((time.monotonic() - t0, state["evaluations"], state["best"]))

    result = OPTIMIZE_METHODS[method]["run"](network, template, goal, opts, on_start_done)
    elapsed = time.monotonic() - t0
    record = {"status": result.status.value, "pipeline": result.method, "wall_s": result.wall_s,
              "elapsed_s": elapsed, "evaluations": result.evaluations,
              "history": [list(h) for h in (result.extra.get("history") or history)],
              "history_source": "baseline" if result.extra.get("history") else "finished starts"}
    if result.best is not None:
        record.update(_design(template, result.best, counts))
    return record


def run_front(method: str, network, template, goal, seed: int, n_points: int, opts: dict) -> tuple[dict, dict | None]:
    """The front run's record, and for weighted-sum also the single-run record of its best design."""
    from codesign.cli import OPTIMIZE_METHODS
    from search.results import design_summary

    counts = [e.count for e in network.layers]
    t0 = time.monotonic()
    front = OPTIMIZE_METHODS[method]["pareto"](network, template, goal, n_points, opts, lambda _res: None)
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
    from formulation.specs.catalog import load_template

    return load_template(spec)


def warm_up(methods: list[str], template, goal, opts: dict) -> dict:
    """Run every method once for a moment on a one-layer network, untimed, so that no timed run pays for imports
    (pymoo, BoTorch), worker-process start-up or first-call set-up. Returns the seconds each took."""
    from formulation.specs.types import Layer, Network, NetworkLayer
    from codesign.cli import OPTIMIZE_METHODS

    network = Network("warm-up", (NetworkLayer(Layer("warm-up", N=1, C=16, K=16, P=7, Q=7, R=3, S=3), 1),))
    seconds = {}
    for method in methods:
        entry = OPTIMIZE_METHODS.get(method)
        if entry is None:
            continue
        t0 = time.monotonic()
        try:
            entry["run"](network, template, goal, {**opts, "seed": 0, "time_limit_s": 2.0}, lambda _res: None)
        except Exception:  # noqa: BLE001  (the timed run will record the error)
            pass
        seconds[method] = round(time.monotonic() - t0, 2)
    return seconds


def _base_record(network: str, method: str, kind: str, seed: int, budget_s: float) -> dict:
    return {"network": network, "method": method, "kind": kind, "seed": seed, "budget_s": budget_s,
            "error": None, "load_1min_before": _loadavg()}


def run_suite(args, doc: dict, output: Path) -> int:
    from formulation.specs.catalog import load_network
    from formulation.goals import Objective
    from codesign.cli import OPTIMIZE_METHODS
    from search.design import Goal

    template = _template(args.arch_template)
    goal = Goal(Objective(args.objective), args.area_budget)
    opts = {"starts": args.starts, "jobs": args.jobs, "time_limit_s": args.budget_s, "backend": "loky",
            "scheduler": None, "fixed_hardware": False}
    status = 0
    if args.warm_up:
        print("warm-up (untimed): " + ", ".join(args.methods), flush=True)
        doc["warm_up_s"] = warm_up(args.methods, template, goal, {**opts, "seed": 0})
    for net_name in args.networks:
        network = load_network(net_name)
        for seed in args.seeds:
            opts["seed"] = seed
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
                    if method not in OPTIMIZE_METHODS:
                        raise RuntimeError(f"method {method} is not registered (available: "
                                           f"{', '.join(sorted(OPTIMIZE_METHODS))})")
                    if kind == "single":
                        rec.update(run_single(method, network, template, goal, seed, opts))
                    else:
                        front, single = run_front(method, network, template, goal, seed, args.pareto,
                                                  {**opts, "starts": args.front_starts})
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
    from search.results import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, default=float) + "\n")


# ---- analysis ---------------------------------------------------------------------------------------------

def analyse(doc: dict) -> dict:
    """Per network: hypervolumes (also stored in the front runs) and the claims; from the runs alone."""
    out = {}
    runs = [r for r in doc["runs"] if not r["error"]]
    for net in dict.fromkeys(r["network"] for r in doc["runs"]):
        fronts = [r for r in runs if r["network"] == net and r["kind"] == "front" and r["front"]]
        pts = [(p["latency_s"], p["power_mW"]) for r in fronts for p in r["front"]]
        hv = None
        if pts:
            ideal = (min(x for x, _ in pts), min(y for _, y in pts))
            nadir = (max(x for x, _ in pts), max(y for _, y in pts))
            ref = tuple(10 ** (math.log10(n) + HV_MARGIN * (math.log10(n) - math.log10(i)) if n > i else
                               math.log10(n) + 0.01) for i, n in zip(ideal, nadir))
            hv = {"ideal": list(ideal), "reference": list(ref)}
            for r in fronts:
                r["hypervolume"] = hypervolume([(p["latency_s"], p["power_mW"]) for p in r["front"]], ideal, ref)
        singles = {}
        for r in runs:
            if r["network"] == net and r["kind"] == "single" and r.get("totals"):
                singles.setdefault(r["method"], {})[r["seed"]] = r
        claims = {}
        cd = singles.get("codesign", {})
        for other in ("ga", "bo"):
            seeds = sorted(set(cd) & set(singles.get(other, {})))
            ratios = {s: singles[other][s]["totals"]["edp"] / cd[s]["totals"]["edp"] for s in seeds}
            if ratios:
                claims[f"edp_ratio_{other}"] = {"per_seed": ratios, "geomean": geomean(ratios.values()),
                                                "min": min(ratios.values()), "target": TARGET_EDP_RATIO}
        seeds = sorted(set(cd) & set(singles.get("ga", {})))
        if seeds:
            per = {}
            for s in seeds:
                ga = singles["ga"][s]
                quality = ga["totals"]["edp"]
                t_ga = time_to_reach(ga["history"], quality)
                t_cd = time_to_reach(cd[s]["history"], quality)
                per[s] = {"ga_final_edp": quality, "ga_time_s": t_ga, "codesign_time_s": t_cd,
                          "speedup": t_ga / t_cd if t_ga is not None and t_cd else None}
            claims["time_to_ga_quality"] = {"per_seed": per, "geomean": geomean(p["speedup"] for p in per.values()),
                                            "target": TARGET_SPEEDUP}
        by_seed = {}
        for r in fronts:
            by_seed.setdefault(r["seed"], {})[r["method"]] = r["hypervolume"]
        ratios = {s: v["codesign"] / v["weighted-sum"] for s, v in by_seed.items()
                  if "codesign" in v and "weighted-sum" in v and v["weighted-sum"] > 0}
        if ratios:
            claims["hypervolume_ratio_eps_vs_ws"] = {"per_seed": ratios, "geomean": geomean(ratios.values()),
                                                     "min": min(ratios.values())}
        out[net] = {"hypervolume": hv, "claims": claims}
    return out


# ---- report and plots -------------------------------------------------------------------------------------

def _g(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        mant, exp = f"{value:.{digits - 1}e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{value:,.{max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))}f}"


def _stat(values, digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1 or min(values) == max(values):
        return _g(values[0], digits)
    return f"{_g(statistics.fmean(values), digits)} ({_g(min(values), digits)}–{_g(max(values), digits)})"


def _ratio(v) -> str:
    return "–" if v is None else f"{v:.2f}x"


def plot_network(doc: dict, net: str, plots_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in doc["runs"] if r["network"] == net and not r["error"]]
    seeds = sorted({r["seed"] for r in runs})
    names = []
    markers = ["o", "s", "^", "D", "v"]
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    for r in sorted((r for r in runs if r["kind"] == "front" and r["front"]), key=lambda r: (r["method"], r["seed"])):
        pts = sorted((p["latency_s"] * 1e3, p["power_mW"]) for p in r["front"])
        m = markers[seeds.index(r["seed"]) % len(markers)]
        ax.step([x for x, _ in pts], [y for _, y in pts], where="post", c=COLORS.get(r["method"], "k"), alpha=0.6)
        ax.scatter([x for x, _ in pts], [y for _, y in pts], c=COLORS.get(r["method"], "k"), marker=m, s=16,
                   label=f"{r['front_method']} front (seed {r['seed']})")
    for r in runs:
        if r["kind"] == "single" and r.get("totals"):
            ax.scatter([r["totals"]["latency_s"] * 1e3], [r["totals"]["power_mW"]], marker="*", s=140,
                       c=COLORS.get(r["method"], "k"), edgecolors="k", linewidths=0.6, zorder=5,
                       label=f"{r['method']} best {doc['config']['objective']} (seed {r['seed']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("power (mW)")
    ax.set_title(f"{net}: latency vs power, {doc['config']['budget_s']:g} s per run, "
                 f"area <= {doc['config']['area_budget_mm2']:g} mm2")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=6.5, ncol=2)
    fig.tight_layout()
    names.append(_save(fig, plots_dir / f"compare-{net}-fronts.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    styles = ["-", "--", ":", "-."]
    singles = sorted((r for r in runs if r["kind"] == "single" and r["history"]),
                     key=lambda r: (r["method"], r["seed"]))
    for r in singles:
        hist = [(t, b) for t, _, b in r["history"] if math.isfinite(b)]
        if not hist:
            continue
        xs = [t for t, _ in hist] + [r["wall_s"]]
        ys = [b for _, b in hist] + [hist[-1][1]]
        ax.step(xs, ys, where="post", c=COLORS.get(r["method"], "k"), ls=styles[seeds.index(r["seed"]) % 4],
                marker="o" if r["method"] == "codesign" else None, ms=4,
                label=f"{r['method']} (seed {r['seed']})")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer wall time (s)")
    unit = " (pJ*s)" if doc["config"]["objective"] == "edp" else ""
    ax.set_ylabel(f"best {doc['config']['objective']} so far{unit}")
    ax.set_title(f"{net}: best-so-far {doc['config']['objective']} against wall time")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    names.append(_save(fig, plots_dir / f"compare-{net}-edp-time.png"))
    plt.close(fig)
    return names


def _save(fig, path: Path) -> str:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.name


def report(doc: dict, output: Path, report_path: Path, plots_dir: Path) -> str:
    cfg, analysis = doc["config"], doc["analysis"]
    rel = os.path.relpath(plots_dir, report_path.parent)
    loads = [v for r in doc["runs"] for v in (r.get("load_1min_before"), r.get("load_1min_after")) if v is not None]
    machine = doc["machine"]
    lines = [
        "# Method comparison",
        "",
        "Generated by `python -m benchmarks compare` from `" + os.path.relpath(output, report_path.parent)
        + "`; do not edit by hand (`python -m benchmarks compare --report-only` regenerates it).",
        "",
    ] + [
        f"- command: `{inv['command']}`; date {inv['date']}, commit `{inv['commit']}`"
        + (" (uncommitted changes)" if inv.get("dirty") else "")
        + (f", {inv['total_wall_s'] / 60:.1f} min" if inv.get("total_wall_s") else "")
        for inv in doc.get("invocations") or [_invocation(doc)]
    ] + [
        f"- machine: {machine['cpu_model']}, {machine['usable_cpus']} usable cores, Python {machine['python']}, "
        f"NumPy {machine['numpy']}; BLAS threads pinned to 1",
        f"- load average (1 min) around the runs: {min(loads):.2f} to {max(loads):.2f} (the machine was shared; "
        f"every method sees the same wall-clock budget, so load costs each of them)" if loads else "- load: unknown",
        f"- setup: template `{cfg['arch_template']}`, objective {cfg['objective']}, area budget "
        f"{cfg['area_budget_mm2']:g} mm2, **{cfg['budget_s']:g} s wall clock per run** (each method's whole-run "
        f"budget), {cfg['jobs']} worker processes per run, seeds {', '.join(map(str, cfg['seeds']))}; codesign "
        f"{cfg['starts']} starts" + (f"; fronts with --pareto {cfg['pareto']} (codesign's ε-constraint runs with "
                                     f"{cfg.get('front_starts', cfg['starts'])} starts each)" if cfg["pareto"]
                                     else "; no fronts"),
        "- runs go one after another; a cell is the mean over seeds with the range (min–max) in parentheses "
        "(one value: every seed gave the same)",
        "",
    ]
    for net, info in analysis.items():
        runs = [r for r in doc["runs"] if r["network"] == net]
        lines += [f"## {net}", ""]
        net_loads = [v for r in runs for v in (r.get("load_1min_before"), r.get("load_1min_after")) if v is not None]
        if net_loads:
            lines += [f"Load average (1 min) during these runs: {min(net_loads):.2f} to {max(net_loads):.2f}.", ""]
        notes: list[str] = []
        lines += ["| method | runs | latency ms | energy mJ | power mW | area mm2 | EDP pJ·s | optimizer wall s | "
                  "evaluations |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for method in _ordered({r["method"] for r in runs if r["kind"] == "single"}):
            rs = [r for r in runs if r["kind"] == "single" and r["method"] == method and not r["error"]
                  and r.get("totals")]
            failed = [r for r in runs if r["kind"] == "single" and r["method"] == method and (r["error"] or
                                                                                              not r.get("totals"))]
            name = method + (" (best of its front run)" if any(r.get("from_front") for r in rs) else "")
            notes += [f"{method} seed {r['seed']}: " + (r["error"] or f"no feasible design (status {r.get('status')})")
                      for r in failed]
            count = f"{len(rs)}" + (f" of {len(rs) + len(failed)}" if failed else "")
            if not rs:
                lines.append(f"| {name} | {count} | – | – | – | – | – | – | – |")
                continue
            t = [r["totals"] for r in rs]
            lines.append(f"| {name} | {count} | {_stat([x['latency_s'] * 1e3 for x in t])} | "
                         f"{_stat([x['energy_pJ'] / 1e9 for x in t])} | {_stat([x['power_mW'] for x in t])} | "
                         f"{_stat([x['area_mm2'] for x in t])} | {_stat([x['edp'] for x in t])} | "
                         f"{_stat([r['wall_s'] for r in rs])} | "
                         f"{_stat([float(r['evaluations']) for r in rs], 3)} |")
        lines.append("")
        if notes:
            lines += ["Runs without a result: " + "; ".join(notes) + ".", ""]
        fronts = [r for r in runs if r["kind"] == "front"]
        if fronts:
            hv = info["hypervolume"]
            lines += ["### Latency/power fronts and hypervolume", ""]
            if hv:
                lines += [f"Hypervolume in log10 (latency, power), normalized to the box from the ideal point "
                          f"({hv['ideal'][0] * 1e3:.4g} ms, {hv['ideal'][1]:.4g} mW) to the common reference point "
                          f"({hv['reference'][0] * 1e3:.4g} ms, {hv['reference'][1]:.4g} mW); larger is better.", ""]
            lines += ["| front | method | runs | points | hypervolume | optimizer wall s | evaluations |",
                      "|---|---|--:|--:|--:|--:|--:|"]
            for method in _ordered({r["method"] for r in fronts}):
                rs = [r for r in fronts if r["method"] == method and not r["error"]]
                bad = [r for r in fronts if r["method"] == method and r["error"]]
                if not rs:
                    lines.append(f"| {FRONT_NAMES[method]} | {method} | 0 of {len(bad)} ({bad[0]['error']}) | "
                                 f"– | – | – | – |")
                    continue
                lines.append(f"| {rs[0]['front_method']} | {method} | {len(rs)} | "
                             f"{_stat([float(len(r['front'])) for r in rs])} | "
                             f"{_stat([r.get('hypervolume') for r in rs])} | {_stat([r['wall_s'] for r in rs])} | "
                             f"{_stat([float(r['evaluations']) for r in rs])} |")
            lines.append("")
        lines += ["### Claims", "", "| claim | target | per seed | overall | verdict |", "|---|---|---|---|---|"]
        claims = info["claims"]
        for other, label in (("ga", "GA"), ("bo", "BO")):
            c = claims.get(f"edp_ratio_{other}")
            if c is None:
                lines.append(f"| EDP ratio {label} / codesign at equal budget | ≥ {TARGET_EDP_RATIO:g}x | no paired "
                             f"runs | – | not measured |")
                continue
            per = ", ".join(f"seed {s}: {_ratio(v)}" for s, v in c["per_seed"].items())
            verdict = ("met" if c["min"] >= TARGET_EDP_RATIO else
                       "met on the geometric mean, not on every seed" if c["geomean"] >= TARGET_EDP_RATIO
                       else "not met")
            lines.append(f"| EDP ratio {label} / codesign at equal budget | ≥ {TARGET_EDP_RATIO:g}x | {per} | "
                         f"{_ratio(c['geomean'])} (geometric mean) | {verdict} |")
        c = claims.get("time_to_ga_quality")
        if c is None:
            lines.append(f"| codesign reaches GA's final EDP sooner | ≥ {TARGET_SPEEDUP:g}x | no paired runs | – | "
                         f"not measured |")
        else:
            per = "; ".join(
                f"seed {s}: GA {_g(p['ga_time_s'])} s, codesign "
                + (f"{_g(p['codesign_time_s'])} s ({_ratio(p['speedup'])})" if p["codesign_time_s"] is not None
                   else "never")
                for s, p in c["per_seed"].items())
            speeds = [p["speedup"] for p in c["per_seed"].values()]
            verdict = ("not met (codesign did not reach it)" if any(v is None for v in speeds) else
                       "met" if min(speeds) >= TARGET_SPEEDUP else
                       "met on the geometric mean, not on every seed" if c["geomean"] >= TARGET_SPEEDUP else "not met")
            lines.append(f"| codesign reaches GA's final EDP sooner (time for GA to reach its final EDP / time "
                         f"for codesign to reach it) | ≥ {TARGET_SPEEDUP:g}x | {per} | {_ratio(c['geomean'])} "
                         f"(geometric mean) | {verdict} |")
        c = claims.get("hypervolume_ratio_eps_vs_ws")
        if c is None:
            lines.append("| ε-constraint hypervolume / weighted-sum hypervolume | > 1 | no paired fronts | – | "
                         "not measured |")
        else:
            per = ", ".join(f"seed {s}: {_ratio(v)}" for s, v in c["per_seed"].items())
            verdict = "ε-constraint larger" if c["min"] > 1 else "weighted-sum larger or equal on some seed"
            lines.append(f"| ε-constraint hypervolume / weighted-sum hypervolume | > 1 | {per} | "
                         f"{_ratio(c['geomean'])} (geometric mean) | {verdict} |")
        lines += ["", "Codesign's best-so-far history has one entry per finished start (when the start's result "
                  "arrives), so its time to a given quality is an upper bound; the baselines record theirs after "
                  "every batch or generation (weighted-sum: after every weight).", ""]
        for name in doc["plots"]:
            if name.startswith(f"compare-{net}-"):
                lines += [f"![{name}]({rel}/{name})", ""]
    text = "\n".join(lines).rstrip() + "\n"
    from search.results import atomic_write_text

    report_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_path, text)
    return text


def _ordered(methods) -> list[str]:
    return sorted(methods, key=lambda m: (DEFAULT_METHODS.index(m) if m in DEFAULT_METHODS else 99, m))


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
    from formulation.specs.catalog import load_network
    from formulation.goals import Objective
    from formulation.specs.types import SpecError
    from codesign.cli import OPTIMIZE_METHODS

    try:
        Objective(args.objective)
    except ValueError:
        return f"--objective = {args.objective!r}: use one of {', '.join(o.value for o in Objective)}"
    unknown = [m for m in args.methods if m not in OPTIMIZE_METHODS]
    if unknown:
        return f"--methods: {', '.join(unknown)} not registered (available: {', '.join(sorted(OPTIMIZE_METHODS))})"
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


def _invocation(doc: dict) -> dict:
    return {k: doc.get(k) for k in ("command", "date", "commit", "dirty", "load_1min_start", "load_1min_end",
                                    "total_wall_s")}


if __name__ == "__main__":
    sys.exit(main())
