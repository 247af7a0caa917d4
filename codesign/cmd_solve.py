"""``codesign solve``: one solve of the continuous relaxation, optionally its ε-constraint front."""

from __future__ import annotations

import sys

from formulation.jsonsafe import json_text
from codesign.args import _number_arg, goal_args, pareto_points, relaxation_solver, time_limit_arg



def _solve_document(problem, result, x, network, template, objective, front) -> dict:
    """The JSON document of ``codesign solve``."""

    doc = {"status": result.status.value, "objective": None, "objective_kind": objective.value,
           "objective_units": {"latency": "s", "energy": "pJ", "edp": "pJ*s", "power": "mW"}[objective.value],
           "objective_log": result.objective, "solver": result.solver, "wall_s": result.wall_s,
           "iterations": result.iterations, "message": result.message, "network": network.name,
           "template": template.name, "area_budget_mm2": problem.area_budget_mm2,
           "caps": {"latency_s": problem.caps.latency_s, "power_mW": problem.caps.power_mW,
                    "energy_pJ": problem.caps.energy_pJ},
           "binding": list(result.binding), "hardware": None, "rounded_hardware": None, "totals": None,
           "layers": []}
    if x is not None:
        totals = {key: s.value for key, s in problem.totals(x).items()}
        totals["edp_pJs"] = totals["energy_pJ"] * totals["latency_s"]
        doc["objective"] = {"latency": totals["latency_s"], "energy": totals["energy_pJ"], "edp": totals["edp_pJs"],
                            "power": totals["power_mW"]}[objective.value]
        doc["totals"] = totals
        doc["hardware"] = problem.hardware(x)
        hw = problem.rounded_hardware(x)
        doc["rounded_hardware"] = {"mesh_x": hw.mesh_x, "mesh_y": hw.mesh_y, **dict(hw.sizes_words)}
        if result.ok:  # active inequalities (the per-layer cycle epigraph rows are always active; left out)
            g = problem.constraints(x)
            active = [name for j, name in enumerate(problem.constraint_names)
                      if problem.cl[j] != problem.cu[j] and g[j] > problem.cu[j] - 1e-6
                      and not name.startswith(("compute[", "bandwidth["))]
            doc["binding"] = sorted(active, key=lambda name: "[" in name and not name.startswith("cap["))
        for i, entry in enumerate(network.layers):
            doc["layers"].append({"name": entry.layer.name, "count": entry.count, "cycles": problem.cycles(x, i),
                                  "tiling": problem.tiling(x, i)})
    if front is not None:
        doc["pareto"] = {"method": front.method, "primary": front.primary, "wall_s": front.wall_s,
                         "points": [p.as_dict() for p in front.points],
                         "non_dominated": [p.as_dict() for p in front.non_dominated().points]}
    return doc


def _solve_summary(doc: dict) -> str:
    lines = [f"{doc['network']} on {doc['template']}: minimize {doc['objective_kind']} with {doc['solver']}"
             + (f", area budget {doc['area_budget_mm2']:g} mm2" if doc["area_budget_mm2"] is not None else "")
             + "".join(f", {key} <= {value:g}" for key, value in doc["caps"].items() if value is not None),
             f"status {doc['status']} ({doc['message']}) in {doc['wall_s']:.2f} s, {doc['iterations']} iterations"]
    if doc["totals"] is not None:
        t, hw, rhw = doc["totals"], doc["hardware"], doc["rounded_hardware"]
        sizes = ", ".join(f"{name} {hw[name]:,.1f} words" for name in hw if name not in ("mesh_x", "mesh_y"))
        lines.append(f"hardware: {hw['mesh_x']:.2f} x {hw['mesh_y']:.2f} PEs (rounded {rhw['mesh_x']}x{rhw['mesh_y']})"
                     + (f", {sizes}" if sizes else ""))
        lines.append(f"totals: latency {t['latency_s'] * 1e3:,.4f} ms, energy {t['energy_pJ'] / 1e6:,.3f} uJ, "
                     f"power {t['power_mW']:,.1f} mW, area {t['area_mm2']:.4f} mm2, EDP {t['edp_pJs']:.5g} pJ*s")
        lines.append(f"objective ({doc['objective_kind']}, {doc['objective_units']}): {doc['objective']:.6g}")
    if doc["binding"] and doc["status"] in ("optimal", "iteration_limit"):
        network_level = [name for name in doc["binding"] if "[" not in name or name.startswith("cap[")]
        per_layer: dict[str, int] = {}
        for name in doc["binding"]:
            if name not in network_level:
                kind = name.split("[")[0] + ("[" + name.split(",")[1] if name.startswith("capacity[") else "")
                per_layer[kind] = per_layer.get(kind, 0) + 1
        lines.append(f"binding: {', '.join(network_level) or 'none network-wide'}; per layer: "
                     + ", ".join(f"{kind} x{count}" for kind, count in per_layer.items()))
    elif doc["binding"]:
        shown = doc["binding"][:5]
        what = "binding" if doc["status"] == "infeasible" else "violated"
        lines.append(f"{what}: {', '.join(shown)}" + (f" (+{len(doc['binding']) - 5} more)"
                                                       if len(doc["binding"]) > 5 else ""))
    if doc["layers"]:
        lines.append(f"{'layer':<22}{'x':>3}{'cycles':>14}  spatial factors at the array fanout")
        for layer in doc["layers"]:
            spatial = {d: f for lv in layer["tiling"].values() for d, f in lv["spatial"].items() if f > 1.001}
            lines.append(f"{layer['name']:<22}{layer['count']:>3}{layer['cycles']:>14,.0f}  "
                         + " ".join(f"{d}={f:.2f}" for d, f in spatial.items()))
    return "\n".join(lines)


def cmd_solve(args) -> int:
    """Solve the continuous relaxation once (and optionally an ε-constraint front of power vs latency)."""
    from formulation.specs.catalog import load_network, load_template
    from formulation.goals import Objective
    from formulation.relaxed.problem import RelaxedProblem
    from formulation.relaxed.solvers import SolveStatus, get_backend
    from formulation.relaxed.sweep import tight_cycles

    objective, area, caps = goal_args(args, energy_cap=True)
    max_iter = _number_arg(args.max_iter, "--max-iter", int, 0, maximum=10 ** 7)
    time_limit = time_limit_arg(args.time_limit)
    n_points = pareto_points(args.pareto)
    solver, hooks = relaxation_solver(args)
    backend = get_backend(solver)
    network = load_network(args.network)
    template = load_template(args.arch_template or "simple")
    problem = RelaxedProblem(network, template, objective, area_budget_mm2=area, caps=caps, model_hooks=hooks)
    options = {"max_iter": max_iter, "time_limit_s": time_limit}
    result = backend.solve(problem, **{k: v for k, v in options.items() if v is not None})
    x = result.x
    if x is not None and objective is not Objective.POWER:
        x = tight_cycles(problem, x)  # the design's real latency (the cycle variables are epigraph variables)
    front = None
    if n_points is not None:
        from formulation.relaxed.sweep import epsilon_constraint

        front = epsilon_constraint(problem, n_points, backend=args.solver, primary="power",
                                   max_iter=max_iter or 3000, time_limit_s=time_limit)
    doc = _solve_document(problem, result, x, network, template, objective, front)
    if args.json:
        print(json_text(doc, indent=2))
    else:
        print(_solve_summary(doc))
        if front is not None:
            print(f"power vs latency, epsilon-constraint, {n_points} points ({front.wall_s:.2f} s with both ends):")
            print(front.table())
    if result.status is SolveStatus.INFEASIBLE:
        why = f": {result.binding[0]}" if result.binding else ""
        print(f"codesign: infeasible{why} ({result.message})", file=sys.stderr)
        return 1
    if result.status in (SolveStatus.ERROR, SolveStatus.UNAVAILABLE):
        print(f"codesign: solver {result.solver} failed: {result.message}", file=sys.stderr)
        return 1
    return 0
