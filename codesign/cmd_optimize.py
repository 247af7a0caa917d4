"""``codesign optimize`` and ``codesign run-default``: the method registry and the co-design command."""

from __future__ import annotations

import sys
from pathlib import Path

from formulation.specs.types import SpecError
from codesign.args import _number_arg


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


def _optimize_template(args):
    """(template, fixed_hardware) from --arch-template / --arch / --fixed-hardware."""
    from formulation.specs.catalog import load_arch
    from formulation.specs.catalog import load_template
    from formulation.specs.template import default_template
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
    from formulation.goals import Caps, Objective
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
    from formulation.specs.catalog import load_network
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
    from search.bnb import attach_bound

    bound = attach_bound(doc, network, template, goal,
                         time_limit_s=_number_arg(getattr(args, "bound_time", "30"), "--bound-time", float, 0.0, strict=False),
                         max_nodes=_number_arg(getattr(args, "bound_nodes", "300"), "--bound-nodes", int, 1,
                                               strict=False),
                         rel_tol=_number_arg(getattr(args, "gap_tolerance", "0.01"), "--gap-tolerance", float, 0.0, strict=False),
                         progress=not args.quiet)
    path = write_results(out, doc, network, template, result.best, front)
    try:
        print(summary_table(doc))
        if bound is not None:
            gap = "" if bound.gap is None else f", gap {100 * bound.gap:.1f}% (tolerance {100 * bound.rel_tol:g}%)"
            print(f"lower bound {bound.lower_bound:.4g} ({bound.nodes} nodes, {bound.wall_s:.1f} s){gap}")
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


def cmd_run_default(args) -> int:
    """The built-in default job (``make run``): co-design for ResNet-18 on the ``simple`` template.

    EDP objective, a binding area budget (:data:`DEFAULT_AREA_BUDGET_MM2`), :data:`DEFAULT_STARTS` starts
    on two workers within :data:`DEFAULT_TIME_LIMIT_S` in all, written to ``out/run-default/`` (its own
    folder, so it is overwritten), and the summary printed.
    """
    argv = ["optimize", "--network", "resnet18", "--arch-template", "simple",
            "--area-budget", str(DEFAULT_AREA_BUDGET_MM2), "--objective", "edp", "--starts", str(DEFAULT_STARTS), "--jobs", "2",
            "--time-limit", str(DEFAULT_TIME_LIMIT_S), "--seed", "0", "--out", "out/run-default", "--force"]
    from codesign.cli import build_parser

    return cmd_optimize(build_parser().parse_args(argv))
