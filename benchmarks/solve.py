"""Relaxation solve times: whole ResNet-18 per solver backend, and per point of an ε-constraint sweep.

Workload: ResNet-18 (all 12 distinct layers, 20 convolutions and the classifier) on the template
around the built-in ``simple`` architecture (``default_template``: mesh sides 4..64, buffers /16..x16),
with a 2 mm2 area budget, which binds: the ``make run`` job's problem.

Steps:

1. Callback cost: one evaluation of everything IPOPT asks for at a new point (objective, gradient,
   constraints, sparse Jacobian), through the compiled path that the solvers use and through the
   direct path (:mod:`formulation.relaxed.reference`: the statement run with :class:`Smooth`, dense rows).
2. Every backend in the registry (:func:`formulation.relaxed.solvers.backend_names`) minimizes EDP from the
   problem's initial point, ``--repeats`` times (``--time-limit`` per solve); backends that are not
   available are recorded with the reason. Each solve runs in a child process (the solver library
   imported before timing) that is killed if it has not answered ``--grace`` seconds after its time
   limit, so a solver that hangs is recorded as such instead of stopping the benchmark.
3. A ``--points``-point ε-constraint sweep of power vs latency with the ``cyipopt`` backend
   (:func:`formulation.relaxed.sweep.epsilon_constraint`): the two anchor solves and every ε point, with
   wall-clock and CPU time and iterations.
4. cProfile of one ``cyipopt`` solve: the top functions by own time.

Wall-clock time is the headline; process CPU time is recorded next to it because on a shared
machine other processes stretch the wall clock but not the CPU time. Results go to
``benchmarks/results/solve.json`` with the machine, date and git commit.

Run: ``python -m benchmarks solve [--help]``.
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import run_header, _loadavg, print_profile, profile_call, write_result
from formulation.specs.catalog import load_arch, load_network
from formulation.relaxed.problem import RelaxedProblem
from formulation.relaxed.reference import reference_objective, reference_rows
from formulation.relaxed.solvers import backend_names, get_backend
from formulation.relaxed.sweep import epsilon_constraint
from formulation.specs.template import default_template

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "solve.json"
AREA_BUDGET_MM2 = 2.0
GOAL_S_PER_POINT = 5.0


def build_problem(objective: str = "edp") -> RelaxedProblem:
    return RelaxedProblem(load_network("resnet18"), default_template(load_arch("simple")), objective,
                          area_budget_mm2=AREA_BUDGET_MM2)


def _timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def callback_cost(problem: RelaxedProblem, calls: int) -> dict:
    """Seconds per new point for the compiled path and the direct path (best of three batches)."""
    rng = np.random.default_rng(0)
    x0 = problem.initial_point()
    points = [np.clip(x0 + rng.normal(0, 0.05, problem.n), problem.lower, problem.upper) for _ in range(calls)]

    def compiled():
        for x in points:
            problem.objective(x), problem.gradient(x), problem.constraints(x), problem.jacobian_values(x)

    def direct():
        for x in points[:max(1, calls // 10)]:
            rows = reference_rows(problem, x)
            np.array([r.value for r in rows]), np.array([r.grad for r in rows])
            reference_objective(problem, x)

    out = {}
    for name, fn, n in (("compiled", compiled, calls), ("direct", direct, max(1, calls // 10))):
        best = min(_timed(fn)[1:] for _ in range(3))
        out[name] = {"points": n, "wall_s_per_point": best[0] / n, "cpu_s_per_point": best[1] / n}
    out["speedup"] = out["direct"]["cpu_s_per_point"] / out["compiled"]["cpu_s_per_point"]
    return out


def child_solve(name: str, time_limit_s: float) -> dict:
    """One timed solve (run in a child process by :func:`bench_backends`)."""
    backend = get_backend(name)
    backend.available()  # imports the solver library before the clock starts
    problem = build_problem()
    result, wall, cpu = _timed(lambda: backend.solve(problem, time_limit_s=time_limit_s))
    return {"status": result.status.value, "wall_s": wall, "cpu_s": cpu, "iterations": result.iterations,
            "objective_ln_edp": result.objective, "message": result.message}


def _run_child(name: str, time_limit_s: float, grace_s: float) -> dict:
    argv = [sys.executable, "-m", "benchmarks", "solve", "--child-backend", name, "--time-limit", str(time_limit_s)]
    start = time.perf_counter()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=time_limit_s + grace_s,
                             cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - start
        return {"status": "hung", "wall_s": wall, "cpu_s": None, "iterations": None, "objective_ln_edp": None,
                "message": f"no answer {wall:.0f} s after starting (time limit {time_limit_s:g} s): killed"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "crashed", "wall_s": time.perf_counter() - start, "cpu_s": None, "iterations": None,
                "objective_ln_edp": None, "message": f"exit status {out.returncode}: {tail}"}
    return json.loads(lines[-1])


def bench_backends(names: list[str], repeats: int, time_limit_s: float, grace_s: float) -> list[dict]:
    rows = []
    for name in names:
        backend = get_backend(name)
        row = {"backend": name, "description": backend.description}
        try:
            ok = backend.available()
        except Exception as exc:  # noqa: BLE001  (an available() that fails is "not available", with why)
            ok, row["reason"] = False, f"available() raised {exc!r}"
        row["available"] = ok
        if not ok:
            row.setdefault("reason", "available() is False: its solver or interface is not installed")
            print(f"  {name}: not available ({row['reason']})", flush=True)
            rows.append(row)
            continue
        runs = []
        for _ in range(repeats):
            run = _run_child(name, time_limit_s, grace_s)
            runs.append(run)
            cpu = "?" if run["cpu_s"] is None else f"{run['cpu_s']:.2f}"
            print(f"  {name}: {run['status']} in {run['wall_s']:.2f} s wall, {cpu} s CPU, "
                  f"{run['iterations']} iterations", flush=True)
            if run["status"] == "hung":
                break  # it will hang again
        answered = [r for r in runs if r["cpu_s"] is not None]
        if answered:
            walls = [r["wall_s"] for r in answered]
            row.update(best_wall_s=min(walls), median_wall_s=statistics.median(walls),
                       best_cpu_s=min(r["cpu_s"] for r in answered))
        row["runs"] = runs
        rows.append(row)
    return rows


def bench_sweep(points: int, time_limit_s: float) -> dict:
    problem = build_problem()
    front, wall, cpu = _timed(lambda: epsilon_constraint(problem, points, backend="cyipopt", primary="power",
                                                         time_limit_s=time_limit_s))
    rows = [{"epsilon_s": p.parameter, **p.as_dict()} for p in front.points]
    anchors = {k: p.as_dict() for k, p in front.anchors.items()}
    point_walls = [p.wall_s for p in front.points]
    point_cpus = [p.cpu_s for p in front.points]
    return {"backend": "cyipopt", "primary": "power", "points": rows, "anchors": anchors, "total_wall_s": wall,
            "total_cpu_s": cpu, "mean_wall_s_per_point": statistics.mean(point_walls),
            "max_wall_s_per_point": max(point_walls), "mean_cpu_s_per_point": statistics.mean(point_cpus),
            "max_cpu_s_per_point": max(point_cpus), "mean_cpu_s_per_point_with_anchors": cpu / points,
            "mean_wall_s_per_point_with_anchors": wall / points,
            "non_dominated": len(front.non_dominated().points)}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks solve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="solves per backend (default %(default)s)")
    parser.add_argument("--points", type=int, default=5, help="epsilon-constraint points (default %(default)s)")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="time limit per solve, s (default %(default)s)")
    parser.add_argument("--backends", help="comma-separated backends (default: every registered one)")
    parser.add_argument("--calls", type=int, default=200, help="points for the callback cost (default %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON (default %(default)s)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="seconds past --time-limit before a solve is declared hung (default %(default)s)")
    parser.add_argument("--child-backend", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.points < 2 or args.time_limit <= 0 or args.calls < 1:
        parser.error("--repeats >= 1, --points >= 2, --time-limit > 0 and --calls >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    if args.child_backend is not None:
        print(json.dumps(child_solve(args.child_backend, args.time_limit)))
        return 0
    names = backend_names() if args.backends is None else [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = sorted(set(names) - set(backend_names()))
    if unknown:
        print(f"solve: error: --backends = {args.backends!r}: unknown {', '.join(unknown)} "
              f"(registered: {', '.join(backend_names())})", file=sys.stderr)
        return 2
    load_before = _loadavg()
    problem = build_problem()
    print(f"solve: resnet18 on {problem.template.name}, area budget {AREA_BUDGET_MM2} mm2: {problem.n} variables, "
          f"{problem.m} constraints, {len(problem.jacobian_structure()[0])} Jacobian nonzeros", flush=True)
    callbacks = callback_cost(problem, args.calls)
    print(f"  callbacks per point: compiled {callbacks['compiled']['cpu_s_per_point'] * 1e3:.2f} ms CPU, "
          f"direct {callbacks['direct']['cpu_s_per_point'] * 1e3:.2f} ms ({callbacks['speedup']:.0f}x)", flush=True)
    backends = bench_backends(names, args.repeats, args.time_limit, args.grace)
    print(f"  epsilon-constraint sweep, {args.points} points (cyipopt)", flush=True)
    sweep = bench_sweep(args.points, args.time_limit)
    profile = None
    if not args.no_profile:
        cyipopt = get_backend("cyipopt")
        profile = {"what": "one cyipopt EDP solve", "tool": "cProfile", "sort": "tottime",
                   "top": profile_call(lambda: cyipopt.solve(build_problem()), 12)}
    result = {
        **run_header("solve", load_before),
        "workload": {"network": "resnet18", "template": problem.template.name, "area_budget_mm2": AREA_BUDGET_MM2,
                     "objective": "edp", "variables": problem.n, "constraints": problem.m,
                     "jacobian_nonzeros": int(len(problem.jacobian_structure()[0]))},
        "options": {"repeats": args.repeats, "time_limit_s": args.time_limit, "grace_s": args.grace,
                    "points": args.points},
        "callbacks": callbacks,
        "backends": backends,
        "epsilon_constraint": sweep,
        "goal_s_per_point": GOAL_S_PER_POINT,
        "goal_met_wall": sweep["max_wall_s_per_point"] < GOAL_S_PER_POINT,
        "goal_met_cpu": sweep["max_cpu_s_per_point"] < GOAL_S_PER_POINT,
        "profile": profile,
    }
    print()
    print(f"whole ResNet-18 relaxation (EDP, {AREA_BUDGET_MM2} mm2), 1 thread, {args.repeats} solves per backend")
    print(f"{'backend':<14}{'status':>10}{'best wall s':>13}{'median wall s':>15}{'best CPU s':>12}{'iterations':>12}")
    for row in backends:
        if not row["available"]:
            print(f"{row['backend']:<14}{'n/a':>10}   {row['reason']}")
            continue
        if "best_wall_s" not in row:
            print(f"{row['backend']:<14}{row['runs'][0]['status']:>10}   {row['runs'][0]['message']}")
            continue
        print(f"{row['backend']:<14}{row['runs'][0]['status']:>10}{row['best_wall_s']:>13.2f}"
              f"{row['median_wall_s']:>15.2f}{row['best_cpu_s']:>12.2f}{row['runs'][0]['iterations']:>12}")
    print(f"\nepsilon-constraint, power vs latency, {args.points} points (cyipopt): {sweep['total_wall_s']:.2f} s wall, "
          f"{sweep['total_cpu_s']:.2f} s CPU in all")
    for name, a in sweep["anchors"].items():
        print(f"  anchor {name:<10} latency {a['latency_s'] * 1e3:.4f} ms, power {a['power_mW']:.1f} mW, "
              f"{a['iterations']} iterations, {a['wall_s']:.2f} s wall, {a['cpu_s']:.2f} s CPU")
    for j, p in enumerate(sweep["points"]):
        print(f"  point {j}: eps {p['epsilon_s'] * 1e3:.4f} ms -> latency {p['latency_s'] * 1e3:.4f} ms, power "
              f"{p['power_mW']:.1f} mW, {p['status']}, {p['iterations']} iterations, {p['wall_s']:.2f} s wall, "
              f"{p['cpu_s']:.2f} s CPU")
    print(f"goal < {GOAL_S_PER_POINT:g} s per point: slowest point {sweep['max_wall_s_per_point']:.2f} s wall "
          f"({'met' if result['goal_met_wall'] else 'not met'}), {sweep['max_cpu_s_per_point']:.2f} s CPU "
          f"({'met' if result['goal_met_cpu'] else 'not met'}); with the anchors "
          f"{sweep['mean_wall_s_per_point_with_anchors']:.2f} s wall, "
          f"{sweep['mean_cpu_s_per_point_with_anchors']:.2f} s CPU per point")
    if profile is not None:
        print_profile("profile of one cyipopt solve (cProfile, by own time):", profile["top"])
    if not args.no_write:
        write_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
