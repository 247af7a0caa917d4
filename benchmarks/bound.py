"""Lower bounds and gaps: how far the co-design's best design is proven to be from the optimum.

Workload: each network (default ResNet-18) on the template around the built-in ``simple``
architecture (mesh sides 4..64, buffers /16..x16) with a 2 mm2 area budget, for each objective
(default EDP). Per case: the co-design pipeline (:func:`search.optimize.optimize`, 4 starts on
2 workers, ``--search-time`` seconds) supplies the incumbent, then the branch-and-bound
(:func:`search.bnb.branch_and_bound`) runs for ``--bound-time`` seconds with that incumbent.
Recorded: the best design's value, the lower bound, the gap (value / bound - 1), nodes and both
times, the node relaxation at the best design's own hardware point (how much of the gap is
the relaxation's, not the branching's), and how many designs of ``results/compare.json`` (every
method, same network, template and budget) fall below the bound (``compare_below_bound``: must be 0).

With ``--pareto N`` it also computes the ε-constraint power/latency front (``search.pareto``,
``--search-time`` for the whole sweep) and bounds every point's power among designs at least as
fast (:func:`search.bnb.power_band`, ``--bound-time`` split over the points): the band.

With ``--total-time T`` each case is instead the whole user pipeline, ``codesign optimize
--total-time T`` (:mod:`search.plan`: search, then polishing by the exact mapper and the
branch-and-bound at the same time, in ``T`` seconds of wall clock in all; the command itself is run,
through :func:`codesign.cli.main`, into a temporary folder), and what its ``result.json`` says is
recorded: the polished design's value, the bound, the gap, each phase's time (search, polishing,
bound; ``polish_wall_s``), the value before polishing, and the command's whole wall time. With
``--pareto N`` too, the front is ``codesign optimize --pareto N --total-time T`` (every point polished
for power under its own latency, then the band); ``--objectives`` may be empty (``--objectives``
with no names) to run the front alone.

Run: ``python -m benchmarks bound [--networks resnet18 vgg16] [--objectives edp energy] [--pareto 5]
[--total-time 300]``. Results go to ``benchmarks/results/bound.json``.
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import os
import time
from pathlib import Path

from benchmarks.common import add_output_arguments, output_error, run_header, write_runs

OUTPUT = Path(__file__).parent / "results" / "bound.json"
COMPARE = Path(__file__).parent / "results" / "compare.json"


def compare_designs(network_name: str, objective_name: str, budget: float) -> list[float]:
    """The objective values of every feasible design of ``network_name`` in ``results/compare.json`` (any
    method, single or front run) at the same area budget and template: none may be below the bound."""
    import json

    if not COMPARE.exists():
        return []
    doc = json.loads(COMPARE.read_text())
    config = doc.get("config", {})
    if config.get("area_budget_mm2") != budget or config.get("arch_template") != "simple":
        return []
    key = {"edp": "edp", "energy": "energy_pJ", "latency": "latency_s"}[objective_name]
    return [r["totals"][key] for r in doc.get("runs", []) if r.get("network") == network_name and r.get("totals")
            and r["totals"].get("feasible") and r["totals"].get(key) is not None]


def run_case(network_name: str, objective_name: str, budget: float, search_s: float, bound_s: float) -> dict:
    from formulation.bound.layer_terms import HardwareBox
    from formulation.bound.model import NodeModel
    from formulation.goals import Objective
    from formulation.specs.catalog import load_network, load_template
    from search.bnb import branch_and_bound
    from search.design import Goal
    from search.optimize import optimize

    network, template = load_network(network_name), load_template("simple")
    goal = Goal(Objective(objective_name), budget)
    t0 = time.monotonic()
    result = optimize(network, template, goal, starts=4, jobs=2, seed=0, time_limit_s=search_s)
    search_wall = time.monotonic() - t0
    value = result.best.score.value(goal.objective)
    bound = branch_and_bound(network, template, goal.objective, budget, incumbent=value, time_limit_s=bound_s,
                             max_nodes=10**7, progress=True)
    found = compare_designs(network_name, objective_name, budget)
    hw = result.best.design.hardware
    point = HardwareBox((hw.mesh_x, hw.mesh_x), (hw.mesh_y, hw.mesh_y), tuple((n, v, v) for n, v in hw.sizes_words))
    at_point = NodeModel(network, template, goal.objective, budget).solve(point).value
    row = {"network": network_name, "objective": objective_name, "area_budget_mm2": budget,
           "best_value": value, "lower_bound": bound.lower_bound, "gap": bound.gap,
           "bound_at_best_hardware": at_point, "gap_at_best_hardware": value / at_point - 1,
           "compare_designs": len(found), "compare_best": min(found, default=None),
           "compare_below_bound": sum(v < bound.lower_bound for v in found),
           "best_hardware": {"mesh_x": hw.mesh_x, "mesh_y": hw.mesh_y, **dict(hw.sizes_words)},
           "bound_nodes": bound.nodes, "bound_open_nodes": bound.open_nodes, "bound_complete": bound.complete,
           "search_wall_s": search_wall, "bound_wall_s": bound.wall_s, "total_wall_s": time.monotonic() - t0}
    print(f"{network_name:12s} {objective_name:8s} best {value:.4g}  bound {bound.lower_bound:.4g}  "
          f"gap {100 * bound.gap:.1f}%  (at the best hardware {100 * row['gap_at_best_hardware']:.1f}%)  "
          f"{bound.nodes} nodes  search {search_wall:.0f} s + bound {bound.wall_s:.0f} s", flush=True)
    return row


def _run_optimize(network_name: str, budget: float, total_s: float, *extra: str) -> tuple[str, int, float, dict]:
    """``codesign optimize`` on the ``simple`` template (4 starts, 2 jobs, seed 0, ``--total-time total_s``,
    ``extra``) into a temporary folder, through :func:`codesign.cli.main`: (the command without its
    folder, exit code, wall time, ``result.json``)."""
    import json
    import tempfile

    from codesign.cli import main as codesign_main

    argv = ["optimize", "--network", network_name, "--arch-template", "simple", "--area-budget", str(budget),
            *extra, "--starts", "4", "--jobs", "2", "--seed", "0", "--total-time", str(total_s)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        code = codesign_main(argv + ["--out", str(Path(tmp) / "run"), "--quiet"])
        wall = time.monotonic() - t0
        doc = json.loads((Path(tmp) / "run" / "result.json").read_text())
    return "codesign " + " ".join(argv + ["--out", "--quiet"]), code, wall, doc


def run_pipeline_case(network_name: str, objective_name: str, budget: float, total_s: float) -> dict:
    """One case as ``codesign optimize --total-time total_s`` (module docstring), with the same checks as
    :func:`run_case` (the bound at the best hardware, the compare designs below the bound)."""
    from formulation.bound.layer_terms import HardwareBox
    from formulation.bound.model import NodeModel
    from formulation.goals import Objective
    from formulation.specs.catalog import load_network, load_template

    command, code, wall, doc = _run_optimize(network_name, budget, total_s, "--objective", objective_name)
    key = {"edp": "edp", "energy": "energy_pJ", "latency": "latency_s"}[objective_name]
    value, bound = doc["totals"][key], doc["lower_bound"]
    hw = doc["hardware"]
    sizes = tuple((n, hw["buffers_words"][n], hw["buffers_words"][n]) for n in hw["variable_sizes"])
    point = HardwareBox((hw["mesh_x"], hw["mesh_x"]), (hw["mesh_y"], hw["mesh_y"]), sizes)
    at_point = NodeModel(load_network(network_name), load_template("simple"), Objective(objective_name),
                         budget).solve(point).value
    found = compare_designs(network_name, objective_name, budget)
    polish = doc.get("polish") or {}
    row = {"network": network_name, "objective": objective_name, "area_budget_mm2": budget,
           "command": command, "exit_code": code,
           "best_value": value, "value_before_polish": polish.get("before"), "lower_bound": bound,
           "gap": doc["gap"], "bound_at_best_hardware": at_point, "gap_at_best_hardware": value / at_point - 1,
           "compare_designs": len(found), "compare_best": min(found, default=None),
           "compare_below_bound": sum(v < bound for v in found),
           "best_hardware": {"mesh_x": hw["mesh_x"], "mesh_y": hw["mesh_y"], **{n: v for n, _, v in sizes}},
           "status": doc["status"], "bound_nodes": doc["bound"].get("nodes"),
           "bound_open_nodes": doc["bound"].get("open_nodes"), "bound_complete": doc["bound"].get("complete"),
           "total_time_s": total_s, "search_wall_s": doc["wall_s"], "polish_wall_s": polish.get("wall_s"),
           "polish": polish, "bound_wall_s": doc["bound"].get("wall_s"), "total_wall_s": wall}
    print(f"{network_name:12s} {objective_name:8s} best {value:.4g} "
          f"(before polishing {polish.get('before', value):.4g})  bound {bound:.4g}  gap {100 * doc['gap']:.1f}%  "
          f"(at the best hardware {100 * row['gap_at_best_hardware']:.1f}%)"
          f"  search {doc['wall_s']:.0f} s, polish {polish.get('wall_s', 0):.0f} s | bound {row['bound_wall_s']:.0f} s,"
          f" {wall:.0f} s in all", flush=True)
    return row


def run_front(network_name: str, budget: float, n_points: int, search_s: float, bound_s: float) -> dict:
    """The ε-constraint front of ``network_name`` (EDP goal) and each point's power bound (the band)."""
    from formulation.goals import Objective
    from formulation.specs.catalog import load_network, load_template
    from search.bnb import power_band
    from search.design import Goal
    from search.pareto import pareto_front

    network, template = load_network(network_name), load_template("simple")
    t0 = time.monotonic()
    front = pareto_front(network, template, Goal(Objective.EDP, budget), n_points, starts=4, jobs=2, seed=0,
                         time_limit_s=search_s)
    search_wall = time.monotonic() - t0
    doc = front.document(template)
    power_band(doc, network, template, budget, time_limit_s=bound_s, max_nodes=10**7)
    points = [{k: p[k] for k in ("latency_s", "power_mW", "power_lower_bound_mW", "power_gap", "latency_cap_s")}
              for p in doc["points"]]
    for p in points:
        print(f"{network_name:12s} front  latency {p['latency_s'] * 1e3:.4f} ms  power {p['power_mW']:.1f} mW  "
              f"bound {p['power_lower_bound_mW']:.1f} mW  gap {100 * p['power_gap']:.1f}%", flush=True)
    return {"network": network_name, "area_budget_mm2": budget, "points": points, "search_wall_s": search_wall,
            "bound_wall_s": time.monotonic() - t0 - search_wall}


def run_pipeline_front(network_name: str, budget: float, n_points: int, total_s: float) -> dict:
    """The front as ``codesign optimize --pareto n_points --total-time total_s`` (EDP goal): the sweep, every
    point polished for power under its own latency, the front taken again and its band; what ``result.json``
    says is recorded (each point's run label ends in ``+polish`` where polishing gave it)."""
    command, code, wall, doc = _run_optimize(network_name, budget, total_s, "--pareto", str(n_points))
    keys = ("latency_s", "power_mW", "power_lower_bound_mW", "power_gap", "latency_cap_s", "run")
    points = [{k: p.get(k) for k in keys} for p in doc["pareto"]["points"]]
    for p in points:
        band = ("no bound" if p["power_lower_bound_mW"] is None else
                f"bound {p['power_lower_bound_mW']:.1f} mW  gap {100 * p['power_gap']:.1f}%")
        print(f"{network_name:12s} front  latency {p['latency_s'] * 1e3:.4f} ms  power {p['power_mW']:.1f} mW  "
              f"{band}  ({p['run']})", flush=True)
    polish = doc.get("polish") or {}
    return {"network": network_name, "area_budget_mm2": budget, "exit_code": code,
            "command": command, "points": points,
            "polish": polish, "search_wall_s": doc["wall_s"], "polish_wall_s": polish.get("wall_s"),
            "total_wall_s": wall}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks bound", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["resnet18"])
    parser.add_argument("--objectives", nargs="*", default=["edp"])
    parser.add_argument("--area-budget", type=float, default=2.0)
    parser.add_argument("--search-time", type=float, default=60.0, help="co-design budget (s, default 60)")
    parser.add_argument("--bound-time", type=float, default=240.0, help="branch-and-bound budget (s, default 240)")
    parser.add_argument("--pareto", type=int, default=0, metavar="N",
                        help="also an N-point ε-constraint front per network with its power band")
    parser.add_argument("--total-time", type=float, default=None, metavar="S",
                        help="run each case as `codesign optimize --total-time S` (search, polishing and bound in "
                             "S seconds in all) instead of --search-time and --bound-time")
    add_output_arguments(parser, OUTPUT)
    args = parser.parse_args(argv)
    if (problem := output_error(args)) is not None:
        parser.error(problem)
    result = run_header("bound", os.getloadavg()[0])
    result["workload"] = {"template": "simple (default_template)", "starts": 4, "jobs": 2, "seed": 0}
    if args.total_time is not None:
        result["workload"]["total_time_s"] = args.total_time
        result["cases"] = [run_pipeline_case(n, o, args.area_budget, args.total_time)
                           for n in args.networks for o in args.objectives]
    else:
        result["workload"].update({"search_time_s": args.search_time, "bound_time_s": args.bound_time})
        result["cases"] = [run_case(n, o, args.area_budget, args.search_time, args.bound_time)
                           for n in args.networks for o in args.objectives]
    if args.pareto and args.total_time is not None:
        result["fronts"] = [run_pipeline_front(n, args.area_budget, args.pareto, args.total_time)
                            for n in args.networks]
    elif args.pareto:
        result["fronts"] = [run_front(n, args.area_budget, args.pareto, args.search_time, args.bound_time)
                            for n in args.networks]
    write_runs(result, args.output, args.append)
    return 0
