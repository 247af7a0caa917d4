"""The report of the method comparison (``python -m benchmarks compare``): measures, analysis, tables, plots.

:func:`analyse` turns the runs of ``benchmarks/results/compare.json`` into hypervolumes and the
claims; :func:`report` writes ``benchmarks/RESULTS.md`` and :func:`plot_network` the plots. The
runs themselves are made by :mod:`benchmarks.compare`.

Hypervolume: per network, in log10 space of (latency, power), normalized to [0, 1] by the box
from the ideal point (the smallest latency and the smallest power of any front point of any method
and seed) to the common reference point (the largest latency and power of any front point, pushed
out by 10 % of the log range). Larger is better.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from pathlib import Path

from formulation.pareto import hypervolume_2d
from search.design import exceeds
from search.results import atomic_write_text

DEFAULT_METHODS = ("codesign", "ga", "bo", "random", "weighted-sum")
FRONT_NAMES = {"codesign": "epsilon-constraint", "ga": "nsga2", "weighted-sum": "weighted-sum"}
COLORS = {"codesign": "C0", "ga": "C1", "bo": "C2", "random": "C7", "weighted-sum": "C3"}
TARGET_EDP_RATIO = 1.5
TARGET_SPEEDUP = 6.0
HV_MARGIN = 0.1


# ---- measures ---------------------------------------------------------------------------------------------

def hypervolume(points, ideal: tuple[float, float], ref: tuple[float, float]) -> float:
    """Share of the log10 box ``[ideal, ref]`` that the (latency, power) ``points`` dominate (0..1)
    (:func:`formulation.pareto.hypervolume_2d` in log10 space, points clipped at the ideal point)."""
    lx0, ly0, lx1, ly1 = (math.log10(v) for v in (*ideal, *ref))
    box = (lx1 - lx0) * (ly1 - ly0)
    if box <= 0:
        return 0.0
    logs = [(max(math.log10(x), lx0), max(math.log10(y), ly0)) for x, y in points
            if 0 < x < ref[0] and 0 < y < ref[1]]
    return hypervolume_2d(logs, (lx1, ly1)) / box


def time_to_reach(history, target: float) -> float | None:
    """Wall time of the first history entry ``(wall_s, evaluations, best)`` whose best is at or below ``target``."""
    for wall, _, best in history:
        if not exceeds(best, target):
            return float(wall)
    return None


def geomean(values):
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


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


def _plot_fronts(plt, doc: dict, net: str, runs: list[dict], seeds: list[int], plots_dir: Path) -> str:
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
    try:
        return _save(fig, plots_dir / f"compare-{net}-fronts.png")
    finally:
        plt.close(fig)


def _plot_history(plt, doc: dict, net: str, runs: list[dict], seeds: list[int], plots_dir: Path) -> str:
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
    try:
        return _save(fig, plots_dir / f"compare-{net}-edp-time.png")
    finally:
        plt.close(fig)


def plot_network(doc: dict, net: str, plots_dir: Path) -> list[str]:
    """The fronts plot and the best-so-far plot of one network; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in doc["runs"] if r["network"] == net and not r["error"]]
    seeds = sorted({r["seed"] for r in runs})
    return [_plot_fronts(plt, doc, net, runs, seeds, plots_dir), _plot_history(plt, doc, net, runs, seeds, plots_dir)]


def _save(fig, path: Path) -> str:
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


def _header(doc: dict, output: Path, report_path: Path) -> list[str]:
    cfg = doc["config"]
    loads = [v for r in doc["runs"] for v in (r.get("load_1min_before"), r.get("load_1min_after")) if v is not None]
    machine = doc["machine"]
    return [
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


def _single_table(runs: list[dict]) -> list[str]:
    notes: list[str] = []
    lines = ["| method | runs | latency ms | energy mJ | power mW | area mm2 | EDP pJ·s | optimizer wall s | "
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
    return lines


def _front_table(fronts: list[dict], hv: dict | None) -> list[str]:
    lines = ["### Latency/power fronts and hypervolume", ""]
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
    return lines


def _speedup_row(c: dict | None) -> str:
    if c is None:
        return (f"| codesign reaches GA's final EDP sooner | ≥ {TARGET_SPEEDUP:g}x | no paired runs | – | "
                f"not measured |")
    per = "; ".join(
        f"seed {s}: GA {_g(p['ga_time_s'])} s, codesign "
        + (f"{_g(p['codesign_time_s'])} s ({_ratio(p['speedup'])})" if p["codesign_time_s"] is not None
           else "never")
        for s, p in c["per_seed"].items())
    speeds = [p["speedup"] for p in c["per_seed"].values()]
    verdict = ("not met (codesign did not reach it)" if any(v is None for v in speeds) else
               "met" if min(speeds) >= TARGET_SPEEDUP else
               "met on the geometric mean, not on every seed" if c["geomean"] >= TARGET_SPEEDUP else "not met")
    return (f"| codesign reaches GA's final EDP sooner (time for GA to reach its final EDP / time "
            f"for codesign to reach it) | ≥ {TARGET_SPEEDUP:g}x | {per} | {_ratio(c['geomean'])} "
            f"(geometric mean) | {verdict} |")


def _claims_table(claims: dict) -> list[str]:
    lines = ["### Claims", "", "| claim | target | per seed | overall | verdict |", "|---|---|---|---|---|"]
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
    lines.append(_speedup_row(claims.get("time_to_ga_quality")))
    c = claims.get("hypervolume_ratio_eps_vs_ws")
    if c is None:
        lines.append("| ε-constraint hypervolume / weighted-sum hypervolume | > 1 | no paired fronts | – | "
                     "not measured |")
    else:
        per = ", ".join(f"seed {s}: {_ratio(v)}" for s, v in c["per_seed"].items())
        verdict = "ε-constraint larger" if c["min"] > 1 else "weighted-sum larger or equal on some seed"
        lines.append(f"| ε-constraint hypervolume / weighted-sum hypervolume | > 1 | {per} | "
                     f"{_ratio(c['geomean'])} (geometric mean) | {verdict} |")
    return lines


def report(doc: dict, output: Path, report_path: Path, plots_dir: Path) -> str:
    """Write ``report_path`` (RESULTS.md) from the runs, the analysis and the plots of ``doc``; return its text."""
    rel = os.path.relpath(plots_dir, report_path.parent)
    lines = _header(doc, output, report_path)
    for net, info in doc["analysis"].items():
        runs = [r for r in doc["runs"] if r["network"] == net]
        lines += [f"## {net}", ""]
        net_loads = [v for r in runs for v in (r.get("load_1min_before"), r.get("load_1min_after")) if v is not None]
        if net_loads:
            lines += [f"Load average (1 min) during these runs: {min(net_loads):.2f} to {max(net_loads):.2f}.", ""]
        lines += _single_table(runs)
        fronts = [r for r in runs if r["kind"] == "front"]
        if fronts:
            lines += _front_table(fronts, info["hypervolume"])
        lines += _claims_table(info["claims"])
        lines += ["", "Codesign's best-so-far history has one entry per finished start (when the start's result "
                  "arrives), so its time to a given quality is an upper bound; the baselines record theirs after "
                  "every batch or generation (weighted-sum: after every weight).", ""]
        for name in doc["plots"]:
            if name.startswith(f"compare-{net}-"):
                lines += [f"![{name}]({rel}/{name})", ""]
    text = "\n".join(lines).rstrip() + "\n"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_path, text)
    return text


def _ordered(methods) -> list[str]:
    return sorted(methods, key=lambda m: (DEFAULT_METHODS.index(m) if m in DEFAULT_METHODS else 99, m))


def _invocation(doc: dict) -> dict:
    return {k: doc.get(k) for k in ("command", "date", "commit", "dirty", "load_1min_start", "load_1min_end",
                                    "total_wall_s")}
