"""The ``codesign`` command line.

Every user mistake ends in one line on stderr (``codesign: error: …``) and exit status 2, never
in a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from formulation.specs import SpecError


def _load_layer(spec: str):
    """A layer from a YAML/JSON file, or ``NETWORK:LAYER`` naming a layer of a (built-in) network."""
    from formulation.catalog import load_network
    from formulation.loading import layer_from_dict, read_document

    path = Path(spec)
    if path.is_file():
        doc = read_document(path)
        if isinstance(doc, dict) and "layer" in doc:
            doc = doc["layer"]
        return layer_from_dict(doc, name=path.stem)
    if ":" not in spec:
        raise SpecError(f"--layer = {spec!r}: not a file; name a layer as NETWORK:LAYER (see 'codesign network NAME')")
    net_name, layer_name = spec.rsplit(":", 1)
    network = load_network(net_name)
    for entry in network.layers:
        if entry.layer.name == layer_name:
            return entry.layer
    names = ", ".join(e.layer.name for e in network.layers)
    raise SpecError(f"--layer = {spec!r}: network {network.name} has no layer {layer_name!r} (it has {names})")


def _load_mapping(spec: str, arch):
    from formulation.loading import mapping_from_list, read_document

    return mapping_from_list(read_document(spec), arch)


def _evaluate_cases(args) -> int:
    from formulation.loading import read_cases
    from formulation.model import evaluate
    from formulation.report import compare_with_reference, evaluation_record

    failures = 0
    for case in read_cases(args.cases):
        record = evaluation_record(evaluate(case.layer, case.arch, case.mapping), case.arch)
        out = {"id": case.id, **record}
        if args.check and case.reference is not None:
            problems = compare_with_reference(record, case.reference)
            out["agrees_with_reference"] = not problems
            if problems:
                out["differences"] = problems
                failures += 1
        print(json.dumps(out))
    if args.check and failures:
        print(f"codesign: {failures} case(s) differ from their reference results", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args) -> int:
    if args.cases:
        return _evaluate_cases(args)
    missing = [name for name in ("layer", "arch", "mapping") if getattr(args, name) is None]
    if missing:
        raise SpecError(f"--{missing[0]} = None: give --layer, --arch and --mapping, or --cases FILE.jsonl")
    from formulation.catalog import load_arch
    from formulation.model import evaluate
    from formulation.report import evaluation_record, format_table
    from formulation.validation import validate_mapping

    layer = _load_layer(args.layer)
    arch = load_arch(args.arch)
    mapping = _load_mapping(args.mapping, arch)
    validate_mapping(layer, arch, mapping)
    record = evaluation_record(evaluate(layer, arch, mapping), arch)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(format_table(record, title=f"{layer.name} on {arch.name}"))
    return 0


def cmd_network(args) -> int:
    from formulation.catalog import load_network

    network = load_network(args.network)
    rows = [{"name": e.layer.name, "count": e.count,
             **{k: getattr(e.layer, k) for k in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "G")},
             "macs": e.layer.macs} for e in network.layers]
    if args.json:
        print(json.dumps({"name": network.name, "layers": rows, "total_macs": network.macs}, indent=2))
        return 0
    print(f"{network.name}: {len(rows)} distinct layers, {sum(r['count'] for r in rows)} in all")
    print(f"{'layer':<24}{'x':>3} {'N':>3}{'C':>6}{'K':>6}{'P':>5}{'Q':>5}{'R':>3}{'S':>3}{'str':>5}{'G':>6}{'MACs':>16}")
    for r in rows:
        print(f"{r['name']:<24}{r['count']:>3} {r['N']:>3}{r['C']:>6}{r['K']:>6}{r['P']:>5}{r['Q']:>5}{r['R']:>3}"
              f"{r['S']:>3}{str(r['Wstride']) + 'x' + str(r['Hstride']):>5}{r['G']:>6}{r['macs'] * r['count']:>16,}")
    print(f"total MACs {network.macs:,}")
    return 0


def cmd_export_timeloop(args) -> int:
    from formulation.timeloop_export import export_timeloop

    if args.cases:
        from formulation.loading import read_cases

        cases = read_cases(args.cases)
        chosen = [c for c in cases if args.id is None or c.id == args.id]
        if not chosen:
            raise SpecError(f"--id = {args.id!r}: no such case in {args.cases}")
        for case in chosen:
            out = Path(args.out) / case.id if len(chosen) > 1 else Path(args.out)
            export_timeloop(case.layer, case.arch, case.mapping, out)
            print(out)
        return 0
    from formulation.catalog import load_arch
    from formulation.validation import validate_mapping

    layer = _load_layer(args.layer)
    arch = load_arch(args.arch)
    mapping = _load_mapping(args.mapping, arch)
    validate_mapping(layer, arch, mapping)
    for path in export_timeloop(layer, arch, mapping, Path(args.out)):
        print(path)
    return 0


# ---- codesign optimize -------------------------------------------------------------------------------

#: Search methods by name: ``run(network, template, goal, options, on_start_done) -> OptimizeResult`` and,
#: optionally, ``pareto(network, template, goal, n_points, options, on_start_done) -> ParetoFront``.
#: Baselines (ga, bo, random, weighted-sum) register here with :func:`register_method`.
OPTIMIZE_METHODS: dict[str, dict] = {}

#: ``make run``: area budget (mm2) of the default job. The built-in ``simple`` architecture (16x16 PEs,
#: 256-word register files, 64Ki-word global buffer) takes 0.81 mm2; its template reaches 64x64 PEs and
#: 16x larger buffers (well over 10 mm2), so 2.0 mm2 binds: the optimizer must trade PEs against buffers.
DEFAULT_AREA_BUDGET_MM2 = 2.0
#: Four starts, two at a time, each cut at 25 s: about a minute on two cores (ResNet-18 starts take 20-45 s).
DEFAULT_STARTS = 4
DEFAULT_TIME_LIMIT_S = 50.0


def register_method(name: str, run, pareto=None, description: str = "") -> None:
    OPTIMIZE_METHODS[name] = {"run": run, "pareto": pareto, "description": description}


def _codesign_run(network, template, goal, opts, on_start_done):
    from search.optimize import optimize

    return optimize(network, template, goal, starts=opts["starts"], jobs=opts["jobs"], seed=opts["seed"],
                    fixed_hardware=opts["fixed_hardware"], time_limit_s=opts["time_limit_s"],
                    backend=opts["backend"], scheduler=opts["scheduler"], on_start_done=on_start_done)


def _codesign_pareto(network, template, goal, n_points, opts, on_start_done):
    from search.pareto import pareto_front

    return pareto_front(network, template, goal, n_points, starts=opts["starts"], jobs=opts["jobs"],
                        seed=opts["seed"], fixed_hardware=opts["fixed_hardware"], time_limit_s=opts["time_limit_s"],
                        backend=opts["backend"], scheduler=opts["scheduler"], on_start_done=on_start_done)


register_method("codesign", _codesign_run, _codesign_pareto,
                "relax (IPOPT), round, local search, from parallel starts")


# Baselines (search.baselines): the same evaluator, legal space and OptimizeResult. ``--time-limit`` is the
# whole run's wall-clock budget, ``--jobs`` spreads model batches (weighted-sum: local searches) over processes,
# ``--seed`` seeds the method; ``--starts`` does not apply (each is one run).

def _baseline_function(name: str):
    from search.baselines import get_method

    try:
        return get_method(name)
    except ImportError as exc:
        raise SpecError(f"--method = {name!r}: needs {exc.name or 'a missing package'} "
                        f"(pip install -e '.[{name}]')") from None


def _baseline_call(name: str, network, template, goal, opts, **extra):
    return _baseline_function(name)(network, template, goal, seed=opts["seed"], time_limit_s=opts["time_limit_s"],
                                    fixed_hardware=opts["fixed_hardware"], jobs=opts["jobs"], **extra)


def _baseline_run(name: str):
    def run(network, template, goal, opts, on_start_done):
        return _baseline_call(name, network, template, goal, opts)

    return run


def _baseline_front(method: str, result, labelled):
    """A :class:`search.pareto.ParetoFront` of one baseline run's ``[(label, Evaluated or None)]`` designs."""
    import math

    from search.pareto import ParetoFront, ParetoPoint, SweepRun, non_dominated

    candidates = [ParetoPoint(ev.score.latency_s, ev.score.power_mW, ev, label) for label, ev in labelled
                  if ev is not None and ev.score.feasible and math.isfinite(ev.score.latency_s)
                  and math.isfinite(ev.score.power_mW)]
    points = non_dominated(candidates)
    span = (points[0].latency_s, points[-1].latency_s) if points else None
    return ParetoFront(points, candidates, [SweepRun(method, None, None, result)], span, result.status, method)


def _ga_pareto(network, template, goal, n_points, opts, on_start_done):
    """NSGA-II on (power, latency): its archive of non-dominated designs (``n_points`` does not bound it)."""
    result = _baseline_call("nsga2", network, template, goal, opts)
    return _baseline_front("nsga2", result, [("nsga2", ev) for ev in result.extra.get("front", ())])


def _weighted_sum_pareto(network, template, goal, n_points, opts, on_start_done):
    """The weighted-sum sweep with ``n_points`` weights; every weight's design is a candidate."""
    if n_points < 2:
        raise SpecError(f"--pareto = {n_points}: the weighted-sum front needs at least 2 weights")
    result = _baseline_call("weighted-sum", network, template, goal, opts, n_weights=n_points)
    return _baseline_front("weighted-sum", result,
                           [(f"w={w:.3g}", ev) for w, ev in result.extra.get("weights", ())])


register_method("ga", _baseline_run("ga"), _ga_pareto,
                "genetic algorithm (pymoo) on the whole-network genome; --pareto: NSGA-II on power vs latency")
register_method("random", _baseline_run("random"), None, "random legal designs, batched; keep the best")
register_method("weighted-sum", _baseline_run("weighted-sum"), _weighted_sum_pareto,
                "relaxation + local search under weighted sums of ln power and ln latency (5 weights; "
                "--pareto N: N weights)")


register_method("bo", _baseline_run("bo"), None,
                "Bayesian optimization (BoTorch GP) over the hardware, inner mapping search per point")


def _number_arg(value, flag: str, kind=float, minimum: float = 0.0, strict: bool = True):
    """``value`` (a string from argparse, or None) as a number above ``minimum``, or a one-line SpecError."""
    import math

    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SpecError(f"{flag} = {value!r}: not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(number):
        raise SpecError(f"{flag} = {value!r}: must be finite")
    if number < minimum or (strict and number == minimum):
        raise SpecError(f"{flag} = {value!r}: must be {'>' if strict else '>='} {minimum:g}")
    return number


def _optimize_template(args):
    """(template, fixed_hardware) from --arch-template / --arch / --fixed-hardware."""
    from formulation.catalog import load_arch
    from formulation.catalog import load_template
    from formulation.template import default_template
    from search.optimize import fixed_template

    if args.arch_template is not None and args.arch is not None:
        raise SpecError(f"--arch = {args.arch!r}: give --arch-template or --arch, not both")
    if args.fixed_hardware:
        if args.arch is None:
            raise SpecError("--fixed-hardware = True: name the hardware with --arch FILE_OR_NAME")
        return fixed_template(load_arch(args.arch)), True
    if args.arch is not None:
        return default_template(load_arch(args.arch)), False
    return load_template(args.arch_template or "simple"), False


def _optimize_goal(args):
    from formulation.relaxation import Caps, Objective
    from search.design import Goal

    try:
        objective = Objective(str(args.objective).lower())
    except ValueError:
        raise SpecError(f"--objective = {args.objective!r}: use one of "
                        f"{', '.join(o.value for o in Objective)}") from None
    caps = Caps(latency_s=_number_arg(args.latency_cap, "--latency-cap"),
                power_mW=_number_arg(args.power_cap, "--power-cap"))
    return Goal(objective, _number_arg(args.area_budget, "--area-budget"), caps)


def cmd_optimize(args) -> int:
    """Co-design hardware and per-layer mappings for a network; write result.json and friends to --out."""
    from formulation.catalog import load_network
    from search.optimize import OptimizeStatus
    from search.results import RESULT_FILE, result_document, summary_table, write_results

    method = OPTIMIZE_METHODS.get(args.method)
    if method is None:
        raise SpecError(f"--method = {args.method!r}: unknown method (available: {', '.join(sorted(OPTIMIZE_METHODS))})")
    goal = _optimize_goal(args)
    opts = {"starts": _number_arg(args.starts, "--starts", int, 1, strict=False),
            "jobs": _number_arg(args.jobs, "--jobs", int, 1, strict=False),
            "seed": _number_arg(args.seed, "--seed", int, 0, strict=False),
            "time_limit_s": _number_arg(args.time_limit, "--time-limit"),
            "backend": args.backend, "scheduler": args.scheduler}
    if args.backend not in ("loky", "dask"):
        raise SpecError(f"--backend = {args.backend!r}: use loky or dask")
    if args.scheduler is not None and args.backend != "dask":
        raise SpecError(f"--scheduler = {args.scheduler!r}: needs --backend dask")
    if not args.network:
        raise SpecError("--network = None: name a built-in network or a network file")
    n_points = _number_arg(args.pareto, "--pareto", int, 1, strict=False)
    if n_points is not None and method["pareto"] is None:
        raise SpecError(f"--pareto = {n_points}: method {args.method} does not compute fronts")
    network = load_network(args.network)
    template, opts["fixed_hardware"] = _optimize_template(args)
    out = Path(args.out) if args.out else Path("out") / f"{network.name}-{goal.objective.value}"
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out = {str(out)!r}: exists and is not a directory")
    if (out / RESULT_FILE).exists() and not args.force:
        raise SpecError(f"--out = {str(out)!r}: already holds {RESULT_FILE} (use --force to overwrite)")

    from tqdm import tqdm

    runs = 1 if n_points is None else n_points + 2
    bar = tqdm(total=opts["starts"] * runs, desc=f"{network.name} ({args.method})", unit="start", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty(), leave=False)
    try:
        front = None
        if n_points is None:
            result = method["run"](network, template, goal, opts, lambda _res: bar.update(1))
        else:
            front = method["pareto"](network, template, goal, n_points, opts, lambda _res: bar.update(1))
            result = front.best_for(network, template, goal)
    finally:
        bar.close()
    doc = result_document(result, network, template, goal, method=args.method, seed=opts["seed"],
                          starts=opts["starts"], time_limit_s=opts["time_limit_s"], front=front)
    path = write_results(out, doc, network, template, result.best, front)
    try:
        print(summary_table(doc))
        print(f"wrote {path}")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head: the files are written, stay quiet
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if result.status is OptimizeStatus.INTERRUPTED:
        print("codesign: interrupted; wrote the best design found so far", file=sys.stderr)
        return 130
    if result.best is None:
        why = f": {result.binding[0]}" if result.binding else ""
        print(f"codesign: no feasible design within the budget and caps{why}", file=sys.stderr)
        return 1
    return 0


# ---- codesign solve ---------------------------------------------------------------------------------


def _solve_document(problem, result, x, network, template, objective, front) -> dict:
    """The JSON document of ``codesign solve``."""
    import math

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
        from formulation.axes import N_DIMS

        k = 2 * problem.levels * N_DIMS
        for i, entry in enumerate(network.layers):
            doc["layers"].append({"name": entry.layer.name, "count": entry.count,
                                  "cycles": math.exp(x[problem.layer_offset[i] + k]),
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
    from formulation.catalog import load_network, load_template
    from formulation.relaxation import Caps, Objective, RelaxedProblem
    from formulation.solvers import SolveStatus, get_backend
    from formulation.sweep import tight_cycles

    try:
        objective = Objective(str(args.objective).lower())
    except ValueError:
        raise SpecError(f"--objective = {args.objective!r}: use one of {', '.join(o.value for o in Objective)}") from None
    caps = Caps(latency_s=_number_arg(args.latency_cap, "--latency-cap"),
                energy_pJ=_number_arg(args.energy_cap, "--energy-cap"),
                power_mW=_number_arg(args.power_cap, "--power-cap"))
    if objective is Objective.POWER and caps.latency_s is None:
        raise SpecError("--objective = 'power': needs --latency-cap (the model has no static power, so without a "
                        "latency cap power falls without bound by idling)")
    area = _number_arg(args.area_budget, "--area-budget")
    max_iter = _number_arg(args.max_iter, "--max-iter", int, 0)
    time_limit = _number_arg(args.time_limit, "--time-limit")
    n_points = _number_arg(args.pareto, "--pareto", int, 1)
    backend = get_backend(args.solver)
    if not backend.available():
        raise SpecError(f"--solver = {args.solver!r}: not available here ({backend.description}; its solver is "
                        f"not installed)")
    network = load_network(args.network)
    template = load_template(args.arch_template or "simple")
    problem = RelaxedProblem(network, template, objective, area_budget_mm2=area, caps=caps)
    options = {"max_iter": max_iter, "time_limit_s": time_limit}
    result = backend.solve(problem, **{k: v for k, v in options.items() if v is not None})
    x = result.x
    if x is not None and objective is not Objective.POWER:
        x = tight_cycles(problem, x)  # the design's real latency (the cycle variables are epigraph variables)
    front = None
    if n_points is not None:
        from formulation.sweep import epsilon_constraint

        front = epsilon_constraint(problem, n_points, backend=args.solver, primary="power",
                                   max_iter=max_iter or 3000, time_limit_s=time_limit)
    doc = _solve_document(problem, result, x, network, template, objective, front)
    if args.json:
        print(json.dumps(doc, indent=2, default=float))
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


def cmd_run_default(args) -> int:
    """The built-in default job (``make run``): co-design for ResNet-18 on the ``simple`` template.

    EDP objective, a binding area budget (:data:`DEFAULT_AREA_BUDGET_MM2`), :data:`DEFAULT_STARTS` starts
    on two workers within :data:`DEFAULT_TIME_LIMIT_S` in all, written to ``out/run-default/`` (its own
    folder, so it is overwritten), and the summary printed.
    """
    argv = ["optimize", "--network", "resnet18", "--arch-template", "simple",
            "--area-budget", str(DEFAULT_AREA_BUDGET_MM2), "--objective", "edp", "--starts", str(DEFAULT_STARTS), "--jobs", "2",
            "--time-limit", str(DEFAULT_TIME_LIMIT_S), "--seed", "0", "--out", "out/run-default", "--force"]
    return cmd_optimize(build_parser().parse_args(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codesign", description="Analytical co-design of CNN accelerators and "
                                     "their dataflows (Timeloop-compatible model).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("evaluate", help="evaluate a mapping, or every case of a JSON-lines file")
    p.add_argument("--cases", help="JSON-lines file of cases (layer, arch, mapping per line); prints JSON lines")
    p.add_argument("--check", action="store_true", help="with --cases: compare with each case's 'timeloop' results")
    p.add_argument("--layer", help="layer file, or NETWORK:LAYER of a built-in or file network")
    p.add_argument("--arch", help="architecture file or built-in name")
    p.add_argument("--mapping", help="mapping file (list of levels, outermost first)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("network", help="list a network's layers, shapes and MACs")
    p.add_argument("network", help="built-in network name or a network YAML/JSON file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_network)

    p = sub.add_parser("export-timeloop", help="write Timeloop v0.3 YAML (arch, problem, mapping, ERT)")
    p.add_argument("--cases", help="JSON-lines case file (export every case, or --id)")
    p.add_argument("--id", help="with --cases: the case to export")
    p.add_argument("--layer")
    p.add_argument("--arch")
    p.add_argument("--mapping")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_export_timeloop)

    p = sub.add_parser("optimize", help="co-design the hardware and every layer's mapping of a network",
                       description="Co-design an accelerator (PE mesh, buffer sizes) and one mapping per layer "
                       "for a network; writes result.json, layers.jsonl (reference-format cases), timeloop/ and, "
                       "with --pareto, pareto.png to --out.")
    p.add_argument("--network", help="built-in network name or a network/layer YAML/JSON file (required)")
    p.add_argument("--arch-template", metavar="NAME_OR_FILE",
                   help="built-in arch name or arch file (template: mesh sides /4..x4, bounded buffers /16..x16), "
                   "or a template YAML {arch, mesh_x: [lo, hi], mesh_y: [lo, hi], sizes: {LEVEL: [lo, hi]}}; "
                   "default simple")
    p.add_argument("--arch", metavar="FILE_OR_NAME", help="an architecture (built-in, arch file or reference case); "
                   "with --fixed-hardware its hardware is kept and only the mappings are searched")
    p.add_argument("--fixed-hardware", action="store_true", help="keep --arch's mesh and buffer sizes")
    p.add_argument("--area-budget", metavar="MM2", help="on-chip area budget in mm2 (default: none)")
    p.add_argument("--objective", default="edp", help="latency, energy, edp or power (default edp)")
    p.add_argument("--latency-cap", metavar="SECONDS", help="upper bound on network latency (s)")
    p.add_argument("--power-cap", metavar="MW", help="upper bound on average power (mW)")
    p.add_argument("--pareto", metavar="N", help="latency/power front from N latency caps (epsilon-constraint); "
                   "--time-limit is then split over the N+2 runs")
    p.add_argument("--method", default="codesign", help="search method (default codesign; available: "
                   + ", ".join(sorted(OPTIMIZE_METHODS)) + ")")
    p.add_argument("--time-limit", default="60", metavar="SECONDS", help="time budget of the whole run, shared by the starts (default 60)")
    p.add_argument("--jobs", default="2", help="parallel workers (default 2)")
    p.add_argument("--seed", default="0", help="random seed; the same seed gives the same design (default 0)")
    p.add_argument("--starts", default="4", help="number of starts (default 4)")
    p.add_argument("--backend", default="loky", help="loky (local processes, default) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --backend dask: a running Dask scheduler")
    p.add_argument("--out", metavar="DIR", help="output directory (default out/NETWORK-OBJECTIVE)")
    p.add_argument("--force", action="store_true", help="overwrite an existing result in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("solve", help="solve the continuous relaxation of network-wide co-design once",
                       description="Minimize a network's latency, energy, EDP or power over the continuous "
                       "relaxation (hardware and per-layer tiling in log form) with an NLP solver. Exit status: "
                       "0 solved (or stopped at a limit with a point), 1 infeasible or solver failure, 2 bad input.")
    p.add_argument("--network", required=True, metavar="NAME_OR_FILE", help="built-in network or network/layer file")
    p.add_argument("--arch-template", default="simple", metavar="NAME_OR_FILE",
                   help="built-in arch name or arch file (template: mesh sides /4..x4, buffers /16..x16), or a "
                   "template YAML {arch, mesh_x: [lo, hi], mesh_y: [lo, hi], sizes: {LEVEL: [lo, hi]}}; default simple")
    p.add_argument("--area-budget", metavar="MM2", help="on-chip area budget in mm2 (default: none)")
    p.add_argument("--objective", default="edp", help="latency, energy, edp or power (default edp)")
    p.add_argument("--latency-cap", metavar="S", help="upper bound on network latency (s)")
    p.add_argument("--power-cap", metavar="MW", help="upper bound on average power (mW)")
    p.add_argument("--energy-cap", metavar="PJ", help="upper bound on network energy (pJ)")
    p.add_argument("--solver", default="cyipopt", help="solver backend (default cyipopt; see formulation.solvers)")
    p.add_argument("--max-iter", metavar="N", help="solver iteration limit (default: the backend's)")
    p.add_argument("--time-limit", metavar="S", help="solver time limit per solve (s)")
    p.add_argument("--pareto", metavar="N", help="also an epsilon-constraint front of power vs latency with N points")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("run-default", help="the built-in default job (what 'make run' runs): co-design ResNet-18 "
                       f"on the simple template, EDP, area budget {DEFAULT_AREA_BUDGET_MM2:g} mm2 (the simple "
                       "architecture takes 0.81 mm2; the template reaches >10 mm2, so the budget binds), "
                       f"{DEFAULT_STARTS} starts on 2 workers within {DEFAULT_TIME_LIMIT_S:g} s in all (about a "
                       "minute), written to out/run-default/")
    p.set_defaults(func=cmd_run_default)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpecError as exc:
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesign: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
