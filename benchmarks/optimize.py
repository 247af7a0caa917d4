"""Discrete co-optimizer: whole-ResNet-18 co-design time and quality, and per-layer mapping quality.

Part (a), co-design: :func:`search.optimize.optimize` on ResNet-18 (all 12 distinct layers with
their repeat counts), minimizing EDP on the template around the built-in ``simple`` architecture
(``default_template``: mesh sides 4..64, GlobalBuffer 4 Ki..1 Mi words, RegisterFile 16..4096
words) under a 2 mm2 area budget, with the default settings (4 starts, 2 loky workers, seed 0,
60 s for the whole run). Recorded: wall-clock time, the CPU time of the process and its workers,
the status, every start's relaxed optimum next to its discrete design (the relaxation's quality),
and the best design. The same run with the hardware fixed to ``simple`` (16x16 PEs, 64 Ki-word
GlobalBuffer, 256-word RegisterFiles; ``codesign optimize --fixed-hardware --arch simple``) is the
comparison point.

Profile: the four starts again, one after the other in this process, each with the per-start
budget of the parallel run; the CPU time of each phase (relaxation solve, rounding, layer
descent, hardware steps, kicks) is measured by wrapping those functions, and one start runs under
cProfile for the functions that take the time.

Part (b), mappings: for a few ResNet-18 layers on the fixed ``simple`` architecture, the mapping
search (``optimize`` of a one-layer network with ``fixed_hardware=True``, default settings) for
energy and for EDP against the best of ``--samples`` random legal mappings
(:func:`search.sampling.sample_mappings`, bypass included), drawn and evaluated in chunks on one
core. Ratio = search / best random (below 1: the search is better).

Wall-clock time is the headline; CPU time is recorded next to it because on a shared machine
other processes stretch the wall clock but not the CPU time. Results go to
``benchmarks/results/optimize.json`` with the machine, date, git commit and load average.

Run: ``python -m benchmarks optimize [--help]`` (part (a) with its profile takes 2-4 minutes on two
cores, part (b) about 30 s per layer).
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import cProfile
import copy
import resource
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from joblib.externals.loky import get_reusable_executor

from benchmarks.common import _git, _loadavg, machine_info, profile_rows, write_result
from formulation.specs.catalog import load_arch, load_network
from formulation.model.exact import evaluate_batch
from formulation.goals import Objective, clock_hz
from formulation.specs.types import Network, NetworkLayer
from formulation.specs.template import default_template
from search.design import Goal
import search.local_search as ls
import search.optimize as so
from search.optimize import fixed_template, optimize, run_start
from search.outcome import OptimizeResult
from search.sampling import sample_mappings

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "optimize.json"
AREA_BUDGET_MM2 = 2.0
GOAL_WALL_S = 60.0
DEFAULT_LAYERS = ("conv1", "layer1_3x3", "layer3_3x3", "layer4_downsample")
RANDOM_CHUNK = 20_000


def _cpu_s() -> float:
    """CPU seconds of this process and of its terminated (waited-for) children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _stop_workers() -> None:
    """Shut loky's reusable workers down, so their CPU time is counted in RUSAGE_CHILDREN."""
    get_reusable_executor().shutdown(wait=True)


def _design_record(result: OptimizeResult, network: Network, template) -> dict | None:
    best = result.best
    if best is None:
        return None
    hw = best.design.hardware
    arch = template.instantiate(hw)
    cycles = best.score.latency_s * clock_hz(arch.clock_GHz)
    return {"mesh": [hw.mesh_x, hw.mesh_y], "sizes_words": dict(hw.sizes_words), "area_mm2": best.score.area_mm2,
            "energy_pJ": best.score.energy_pJ, "latency_s": best.score.latency_s, "edp_pJ_s": best.score.edp,
            "utilization": network.macs / (cycles * arch.mac.instances)}


def run_optimize(network: Network, template, goal: Goal, **kwargs) -> dict:
    """One ``optimize`` call with wall and CPU time (workers included) and the load around it."""
    _stop_workers()
    load = _loadavg()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    result = optimize(network, template, goal, **kwargs)
    wall = time.perf_counter() - t0
    _stop_workers()
    cpu = _cpu_s() - cpu0
    starts = []
    for s in result.starts:
        value = s.best.score.value(goal.objective) if s.best is not None else None
        starts.append({"start": s.start, "solver_status": s.solver_status, "relaxed_objective": s.relaxed_objective,
                       "discrete_objective": value,
                       "discrete_over_relaxed": value / s.relaxed_objective if value and s.relaxed_objective else None,
                       "wall_s": s.wall_s, "timed_out": s.timed_out, "evaluations": s.evaluations})
    return {"status": result.status.value, "wall_s": wall, "cpu_s": cpu, "load_average_1min_before": load,
            "evaluations": result.evaluations, "objective": goal.objective.value,
            "best_objective": result.best.score.value(goal.objective) if result.best else None,
            "design": _design_record(result, network, template), "starts": starts,
            "settings": {k: v for k, v in kwargs.items() if k != "on_start_done"}}


class PhaseTimer:
    """CPU and wall time per phase of a start, by wrapping the functions of each phase.

    The outermost wrapped call owns the time: a descent inside a kick counts as kicks, a 3-round
    descent or a repair inside a hardware step counts as hardware steps.
    """

    def __init__(self):
        self.cpu = defaultdict(float)
        self.wall = defaultdict(float)
        self.calls = defaultdict(int)
        self._active = False
        self._undo = []

    def _timed(self, fn, phase_of):
        def wrapper(*args, **kwargs):
            if self._active:
                return fn(*args, **kwargs)
            self._active = True
            c0, t0 = time.process_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phase = phase_of(args, kwargs)
                self.cpu[phase] += time.process_time() - c0
                self.wall[phase] += time.perf_counter() - t0
                self.calls[phase] += 1
                self._active = False

        return wrapper

    def _patch(self, module, attr: str, new) -> None:
        self._undo.append((module, attr, getattr(module, attr)))
        setattr(module, attr, new)

    def __enter__(self):
        get_backend = so.get_backend
        solve_phase = self._timed

        def timed_backend(name):  # run_start looks get_backend up in search.optimize when it runs
            backend = copy.copy(get_backend(name))
            backend.solve = solve_phase(backend.solve, lambda a, k: "relaxation solve (IPOPT)")
            return backend

        self._patch(so, "get_backend", timed_backend)
        self._patch(so, "round_solution", self._timed(so.round_solution, lambda a, k: "rounding"))
        self._patch(ls, "kick_layers", self._timed(ls.kick_layers, lambda a, k: "kicks"))
        # a 3-round descent is the one local_search runs on each hardware neighbour
        self._patch(ls, "improve_layers", self._timed(
            ls.improve_layers, lambda a, k: "hardware steps" if k.get("max_rounds") == 3 else "layer descent"))
        self._patch(ls, "repaired_design", self._timed(ls.repaired_design, lambda a, k: "hardware steps"))
        self._patch(ls, "evaluate_design", self._timed(ls.evaluate_design, lambda a, k: "hardware steps"))
        return self

    def __exit__(self, *exc):
        for module, attr, fn in reversed(self._undo):
            setattr(module, attr, fn)


def profile_starts(network: Network, template, goal: Goal, starts: int, jobs: int, seed: int, time_limit_s: float,
                   profile_start: int, top: int) -> dict:
    """Every start serially in this process, with the per-start budget of the parallel run."""
    per_start = time_limit_s * min(max(jobs, 1), starts) / starts
    run_start(Network("warm-up", network.layers[-1:]), template, goal, seed, 0, "cyipopt", False, per_start)
    rows = []
    profile = None
    for k in range(starts):
        with PhaseTimer() as timer:
            c0, t0 = time.process_time(), time.perf_counter()
            if k == profile_start:
                profiler = cProfile.Profile(time.process_time)
                res = profiler.runcall(run_start, network, template, goal, seed, k, "cyipopt", False, per_start)
                profile = _profile_rows(profiler, top)
            else:
                res = run_start(network, template, goal, seed, k, "cyipopt", False, per_start)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        phases = {p: {"cpu_s": timer.cpu[p], "wall_s": timer.wall[p], "calls": timer.calls[p]} for p in timer.cpu}
        phases["other"] = {"cpu_s": cpu - sum(timer.cpu.values()), "wall_s": wall - sum(timer.wall.values())}
        rows.append({"start": k, "cpu_s": cpu, "wall_s": wall, "timed_out": res.timed_out,
                     "evaluations": res.evaluations, "under_cprofile": k == profile_start,
                     "objective": res.best.score.value(goal.objective) if res.best else None, "phases": phases})
    return {"per_start_budget_s": per_start, "starts": rows,
            "profile": {"start": profile_start, "tool": "cProfile (process_time)", "sort": "tottime", "top": profile}}


def _profile_rows(profiler: cProfile.Profile, top: int) -> list[dict]:
    rows, total = profile_rows(profiler)
    by_own = sorted(rows, key=lambda r: r["tottime_s"], reverse=True)[:top]
    by_cum = sorted(rows, key=lambda r: r["cumtime_s"], reverse=True)[:top]
    return {"by_own_time": by_own, "by_cumulative_time": by_cum, "total_s": total}


def random_search(layer, arch, samples: int, seed: int) -> dict:
    """Best energy and EDP of ``samples`` random legal mappings, drawn and evaluated in chunks."""
    rng = np.random.default_rng(seed)
    best_e = best_edp = np.inf
    sample_cpu = eval_cpu = 0.0
    t0 = time.perf_counter()
    clock = clock_hz(arch.clock_GHz)
    done = 0
    while done < samples:
        n = min(RANDOM_CHUNK, samples - done)
        c0 = time.process_time()
        arrays = sample_mappings(layer, arch, n, rng)
        c1 = time.process_time()
        ev = evaluate_batch(layer, arch, arrays)
        eval_cpu += time.process_time() - c1
        sample_cpu += c1 - c0
        best_e = min(best_e, float(ev.energy_pJ.min()))
        best_edp = min(best_edp, float((ev.energy_pJ * ev.cycles).min()) / clock)
        done += n
    return {"samples": samples, "seed": seed, "best_energy_pJ": best_e, "best_edp_pJ_s": best_edp,
            "wall_s": time.perf_counter() - t0, "cpu_s": sample_cpu + eval_cpu, "sampling_cpu_s": sample_cpu,
            "evaluation_cpu_s": eval_cpu}


def run_layers(names: list[str], samples: int, seed: int, jobs: int) -> list[dict]:
    network = load_network("resnet18")
    arch = load_arch("simple")
    template = fixed_template(arch)
    rows = []
    for name in names:
        entry = next(e for e in network.layers if e.layer.name == name)
        layer = entry.layer
        print(f"  {name}: random search, {samples:,} mappings", flush=True)
        rnd = random_search(layer, arch, samples, seed)
        one = Network(name, (NetworkLayer(layer),))
        row = {"layer": name, "dims_NKCPQRS": list(layer.dims), "strides": [layer.Wstride, layer.Hstride],
               "macs": layer.macs, "random": rnd}
        for objective, key in ((Objective.ENERGY, "best_energy_pJ"), (Objective.EDP, "best_edp_pJ_s")):
            print(f"  {name}: mapping search for {objective.value}", flush=True)
            run = run_optimize(one, template, Goal(objective), fixed_hardware=True, jobs=jobs, seed=seed)
            run["ratio_to_best_random"] = run["best_objective"] / rnd[key] if run["best_objective"] else None
            row[objective.value] = run
        rows.append(row)
    return rows


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks optimize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="codesign,profile,layers",
                        help="comma-separated parts to run: codesign, profile, layers (default %(default)s)")
    parser.add_argument("--starts", type=int, default=4, help="starts (default %(default)s, optimize's default)")
    parser.add_argument("--jobs", type=int, default=2, help="workers (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default %(default)s)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="whole-run budget in s (default %(default)s)")
    parser.add_argument("--layers", default=",".join(DEFAULT_LAYERS), help="ResNet-18 layers of part (b)")
    parser.add_argument("--samples", type=int, default=200_000, help="random mappings per layer (default %(default)s)")
    parser.add_argument("--profile-start", type=int, default=0, help="the start run under cProfile")
    parser.add_argument("--profile-top", type=int, default=15, help="profile entries to keep (default %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON (default %(default)s)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - {"codesign", "profile", "layers"}
    if unknown:
        parser.error(f"--parts = {sorted(unknown)}: use codesign, profile, layers")
    args.layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    names = {e.layer.name for e in load_network("resnet18").layers}
    if set(args.layers) - names:
        parser.error(f"--layers = {sorted(set(args.layers) - names)}: not ResNet-18 layers ({', '.join(sorted(names))})")
    if args.starts < 1 or args.jobs < 1 or args.samples < 1 or args.time_limit <= 0:
        parser.error("--starts, --jobs, --samples and --time-limit must be positive")
    return args


def _g(x, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _print_codesign(rec: dict) -> None:
    cd, fx = rec["codesign"], rec["fixed_simple"]
    d = cd["design"]
    print(f"\nResNet-18 co-design, EDP, simple template, {AREA_BUDGET_MM2} mm2: {cd['status']} in {cd['wall_s']:.1f} s "
          f"wall, {cd['cpu_s']:.1f} s CPU (process + workers), {cd['evaluations']:,} evaluations")
    print(f"  best: EDP {_g(d['edp_pJ_s'])} pJ*s, E {_g(d['energy_pJ'])} pJ, T {_g(d['latency_s'])} s, "
          f"mesh {d['mesh'][0]}x{d['mesh'][1]}, {d['sizes_words']}, {d['area_mm2']:.3f} mm2, "
          f"utilization {d['utilization']:.1%}")
    for s in cd["starts"]:
        print(f"  start {s['start']}: solver {s['solver_status']:<15} relaxed {_g(s['relaxed_objective'])}  "
              f"discrete {_g(s['discrete_objective'])}  ratio {_g(s['discrete_over_relaxed'], 3)}  "
              f"{s['wall_s']:.1f} s{'  (timed out)' if s['timed_out'] else ''}")
    f = fx["design"]
    print(f"fixed simple 16x16 (--fixed-hardware): {fx['status']} in {fx['wall_s']:.1f} s wall, {fx['cpu_s']:.1f} s CPU: "
          f"EDP {_g(f['edp_pJ_s'])}, E {_g(f['energy_pJ'])}, T {_g(f['latency_s'])}, {f['area_mm2']:.3f} mm2, "
          f"utilization {f['utilization']:.1%}")
    print(f"co-design / fixed: EDP {rec['codesign_over_fixed']['edp']:.3f}, energy "
          f"{rec['codesign_over_fixed']['energy']:.3f}, latency {rec['codesign_over_fixed']['latency']:.3f}")


def _print_profile(prof: dict) -> None:
    print(f"\nprofile: starts one after the other, {prof['per_start_budget_s']:.0f} s budget each (CPU s by phase)")
    phases = sorted({p for s in prof["starts"] for p in s["phases"]})
    print(f"  {'start':>5} {'CPU s':>7} {'wall s':>7}  " + "  ".join(f"{p[:22]:>22}" for p in phases))
    for s in prof["starts"]:
        cells = "  ".join(f"{s['phases'].get(p, {}).get('cpu_s', 0.0):>22.2f}" for p in phases)
        print(f"  {s['start']:>5} {s['cpu_s']:>7.2f} {s['wall_s']:>7.2f}  {cells}"
              f"{'  (cProfile)' if s['under_cprofile'] else ''}{'  (timed out)' if s['timed_out'] else ''}")
    print(f"  top functions by own CPU time, start {prof['profile']['start']} under cProfile:")
    for p in prof["profile"]["top"]["by_own_time"][:10]:
        print(f"    {p['tottime_s']:>7.2f} s {p['tottime_share']:>6.1%} {p['ncalls']:>8}  {p['function']}")


def _print_layers(rows: list[dict]) -> None:
    print("\nmapping search on the fixed simple arch vs the best random mapping (ratio < 1: search better)")
    print(f"  {'layer':<18} {'random':>8} {'rnd s':>6} {'E ratio':>8} {'E s':>6} {'EDP ratio':>9} {'EDP s':>6}")
    for r in rows:
        print(f"  {r['layer']:<18} {r['random']['samples']:>8,} {r['random']['wall_s']:>6.1f} "
              f"{_g(r['energy']['ratio_to_best_random'], 3):>8} {r['energy']['wall_s']:>6.1f} "
              f"{_g(r['edp']['ratio_to_best_random'], 3):>9} {r['edp']['wall_s']:>6.1f}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    network = load_network("resnet18")
    template = default_template(load_arch("simple"))
    goal = Goal(Objective.EDP, AREA_BUDGET_MM2)
    settings = dict(starts=args.starts, jobs=args.jobs, seed=args.seed, time_limit_s=args.time_limit)
    result = {
        "benchmark": "optimize",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": {p: bool(_git("status", "--porcelain", "--", p)) for p in ("formulation", "search")},
        "machine": machine_info(),
        "load_average_1min": {"before": _loadavg()},
        "workload": {"network": network.name, "distinct_layers": len(network.layers),
                     "layers": sum(e.count for e in network.layers), "macs": network.macs,
                     "template": template.name, "mesh_x_range": template.mesh_x_range,
                     "mesh_y_range": template.mesh_y_range, "size_ranges": template.size_ranges,
                     "objective": "edp", "area_budget_mm2": AREA_BUDGET_MM2},
        "goal_wall_s": GOAL_WALL_S,
    }
    if "codesign" in args.parts:
        print(f"optimize: ResNet-18 co-design ({settings})", flush=True)
        codesign = run_optimize(network, template, goal, **settings)
        print("optimize: ResNet-18 on the fixed simple architecture", flush=True)
        fixed = run_optimize(network, fixed_template(load_arch("simple")), goal, fixed_hardware=True, **settings)
        relaxed = [s["relaxed_objective"] for s in codesign["starts"] if s["relaxed_objective"]]
        result["codesign"] = codesign
        result["fixed_simple"] = fixed
        result["relaxation"] = {
            "best_relaxed_objective": min(relaxed) if relaxed else None,
            "best_discrete_over_best_relaxed": codesign["best_objective"] / min(relaxed) if relaxed else None,
            "note": "each start's relaxation fixes that start's loop orders, bypass and spatial axes, so its "
                    "optimum bounds only designs with those choices (and leaves out link transfers and the "
                    "ceilings); the discrete search changes them, so it can end below the relaxed optimum",
        }
        cf, ff = codesign["design"], fixed["design"]
        result["codesign_over_fixed"] = {k: cf[v] / ff[v] for k, v in
                                         (("edp", "edp_pJ_s"), ("energy", "energy_pJ"), ("latency", "latency_s"))}
        result["goal_met"] = codesign["wall_s"] <= GOAL_WALL_S and codesign["status"] == "converged"
        _print_codesign(result)
    if "profile" in args.parts:
        print("\noptimize: profiling the starts one by one", flush=True)
        result["profile"] = profile_starts(network, template, goal, args.starts, args.jobs, args.seed,
                                           args.time_limit, args.profile_start, args.profile_top)
        _print_profile(result["profile"])
    if "layers" in args.parts:
        print("\noptimize: per-layer mapping search vs random search", flush=True)
        result["layers"] = {"arch": "simple", "samples": args.samples, "layers": run_layers(args.layers, args.samples,
                                                                                            args.seed, args.jobs)}
        _print_layers(result["layers"]["layers"])
    result["load_average_1min"]["after"] = _loadavg()
    if not args.no_write:
        write_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
