"""``codesign optimize`` and ``codesign run-default``: parse the options, run a registered method, write the result.

The methods themselves are in :mod:`search.methods`; this module only turns the command line into a
goal, a template and :class:`~search.methods.RunOptions`, shows progress and writes the files.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from codesign.args import TEMPLATE_HELP, _number_arg, add_goal_options, add_solver_options, relaxation_solver
from formulation.goals import Caps, Objective
from formulation.specs.catalog import load_arch, load_network, load_template
from formulation.specs.template import default_template
from formulation.specs.types import SpecError
from search.design import Goal
from search.methods import METHODS, RunOptions, get_method
from search.optimize import fixed_template
from search.outcome import OptimizeStatus
from search.residency import best_with_residency
from search.results import RESULT_FILE, result_document, summary_table, write_results

#: ``make run``: area budget (mm2) of the default job. The built-in ``simple`` architecture (16x16 PEs,
#: 256-word register files, 64Ki-word global buffer) takes 0.81 mm2; its template reaches 64x64 PEs and
#: 16x larger buffers (well over 10 mm2), so 2.0 mm2 binds: the optimizer must trade PEs against buffers.
DEFAULT_AREA_BUDGET_MM2 = 2.0
#: Four starts, two at a time, each cut at 25 s: about a minute on two cores (ResNet-18 starts take 20-45 s).
DEFAULT_STARTS = 4
DEFAULT_TIME_LIMIT_S = 50.0


def add_optimize_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``codesign optimize``."""
    p.add_argument("--network", help="built-in network name or a network/layer YAML/JSON file (required)")
    p.add_argument("--arch-template", metavar="NAME_OR_FILE", help=TEMPLATE_HELP)
    p.add_argument("--arch", metavar="FILE_OR_NAME", help="an architecture (built-in, arch file or reference case); "
                   "with --fixed-hardware its hardware is kept and only the mappings are searched")
    p.add_argument("--fixed-hardware", action="store_true", help="keep --arch's mesh and buffer sizes")
    add_goal_options(p)
    p.add_argument("--pareto", metavar="N", help="latency/power front from N latency caps (epsilon-constraint); "
                   "--time-limit is then split over the N+2 runs")
    p.add_argument("--method", default="codesign", help="search method (default codesign; available: "
                   + ", ".join(sorted(METHODS)) + ")")
    p.add_argument("--time-limit", default="60", metavar="SECONDS",
                   help="time budget of the whole run, shared by the starts (default 60)")
    p.add_argument("--jobs", default="2", help="parallel workers (default 2)")
    p.add_argument("--seed", default="0", help="random seed; the same seed gives the same design (default 0)")
    p.add_argument("--starts", default="4", help="number of starts (default 4)")
    add_solver_options(p, "every start's relaxation and the weighted-sum baseline")
    p.add_argument("--backend", default="loky", help="loky (local processes, default) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --backend dask: a running Dask scheduler")
    p.add_argument("--out", metavar="DIR", help="output directory (default out/NETWORK-OBJECTIVE)")
    p.add_argument("--force", action="store_true", help="overwrite an existing result in --out")
    p.add_argument("--keep-activations", action="store_true", help="let layer outputs stay in the outermost "
                   "on-chip buffer between layers (README 'Activation residency'); re-sizes that buffer for it "
                   "and reports the DRAM energy saved in result.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--bound-time", default="30", metavar="SECONDS",
                   help="after the search, at most this many seconds of branch-and-bound for a proven lower "
                        "bound and gap (edp, energy, latency; 0: none; default 30)")
    p.add_argument("--bound-nodes", default="300", metavar="N",
                   help="node budget of the branch-and-bound (reproducible where --bound-time does not cut it; "
                        "default 300)")
    p.add_argument("--gap-tolerance", default="0.01", metavar="REL",
                   help="relative gap within which the status is 'optimal' (default 0.01)")


def _optimize_template(args):
    """(template, fixed_hardware) from --arch-template / --arch / --fixed-hardware."""
    if args.arch_template is not None and args.arch is not None:
        raise SpecError(f"--arch = {args.arch!r}: give --arch-template or --arch, not both")
    if args.fixed_hardware:
        if args.arch is None:
            raise SpecError("--fixed-hardware = True: name the hardware with --arch FILE_OR_NAME")
        return fixed_template(load_arch(args.arch)), True
    if args.arch is not None:
        return default_template(load_arch(args.arch)), False
    return load_template(args.arch_template or "simple"), False


def _optimize_goal(args) -> Goal:
    try:
        objective = Objective(str(args.objective).lower())
    except ValueError:
        raise SpecError(f"--objective = {args.objective!r}: use one of "
                        f"{', '.join(o.value for o in Objective)}") from None
    caps = Caps(latency_s=_number_arg(args.latency_cap, "--latency-cap"),
                power_mW=_number_arg(args.power_cap, "--power-cap"))
    return Goal(objective, _number_arg(args.area_budget, "--area-budget"), caps)


def _run_options(args) -> RunOptions:
    if args.backend not in ("loky", "dask"):
        raise SpecError(f"--backend = {args.backend!r}: use loky or dask")
    if args.scheduler is not None and args.backend != "dask":
        raise SpecError(f"--scheduler = {args.scheduler!r}: needs --backend dask")
    solver, model_hooks = relaxation_solver(args)
    return RunOptions(starts=_number_arg(args.starts, "--starts", int, 1, strict=False),
                      jobs=_number_arg(args.jobs, "--jobs", int, 1, strict=False),
                      seed=_number_arg(args.seed, "--seed", int, 0, strict=False),
                      time_limit_s=_number_arg(args.time_limit, "--time-limit"),
                      backend=args.backend, scheduler=args.scheduler, solver=solver, model_hooks=model_hooks)


def _output_dir(args, network, goal: Goal) -> Path:
    out = Path(args.out) if args.out else Path("out") / f"{network.name}-{goal.objective.value}"
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out = {str(out)!r}: exists and is not a directory")
    if (out / RESULT_FILE).exists() and not args.force:
        raise SpecError(f"--out = {str(out)!r}: already holds {RESULT_FILE} (use --force to overwrite)")
    return out


def _print(text: str) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head: the files are written, stay quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _residency_line(choice) -> str:
    if choice is None:
        return ""
    r = choice.residency
    return (f"\nkeep-activations: {r.level} {r.size_words:,} words; {len(r.kept)} of {len(r.occurrences)} layer "
            f"outputs stay on chip; DRAM energy saved {r.dram_energy_saved_pJ / 1e6:,.3f} uJ "
            f"({r.dram_energy_saved_pJ / choice.energy_pJ_without:.1%} of the per-layer sum)")


def _attach_bound(args, doc: dict, network, template, goal: Goal):
    """The lower bound and gap (:func:`search.bnb.attach_bound`); none for --keep-activations runs."""
    from search.bnb import attach_bound

    if args.keep_activations:
        doc.update({"lower_bound": None, "gap": None,
                    "bound": {"covers": "no bound: --keep-activations (outputs kept on chip between layers are "
                                        "outside the per-layer model the bound covers)"}})
        return None
    time_limit_s = _number_arg(args.bound_time, "--bound-time", float, 0.0, strict=False)
    max_nodes = _number_arg(args.bound_nodes, "--bound-nodes", int, 1, strict=False)
    if doc.get("pareto") and time_limit_s > 0:
        from search.bnb import power_band

        power_band(doc["pareto"], network, template, goal.area_budget_mm2, time_limit_s=time_limit_s / 2,
                   max_nodes=max_nodes)
        time_limit_s /= 2
    return attach_bound(doc, network, template, goal, time_limit_s=time_limit_s, max_nodes=max_nodes,
                        rel_tol=_number_arg(args.gap_tolerance, "--gap-tolerance", float, 0.0, strict=False),
                        progress=not args.quiet)


def _bound_line(bound) -> str:
    if bound is None:
        return ""
    gap = "" if bound.gap is None else f", gap {100 * bound.gap:.1f}% (tolerance {100 * bound.rel_tol:g}%)"
    return f"\nlower bound {bound.lower_bound:.4g} ({bound.nodes} nodes, {bound.wall_s:.1f} s){gap}"


def cmd_optimize(args) -> int:
    """Co-design hardware and per-layer mappings for a network; write result.json and friends to --out."""
    method = get_method(args.method)
    goal = _optimize_goal(args)
    options = _run_options(args)
    if not args.network:
        raise SpecError("--network = None: name a built-in network or a network file")
    n_points = _number_arg(args.pareto, "--pareto", int, 1, strict=False)
    if args.keep_activations and n_points is not None:
        raise SpecError(f"--pareto = {n_points}: not with --keep-activations (it re-sizes one design)")
    method.check(options, n_points)
    network = load_network(args.network)
    template, fixed_hardware = _optimize_template(args)
    options = replace(options, fixed_hardware=fixed_hardware)
    method.check(options, n_points)
    out = _output_dir(args, network, goal)

    runs = 1 if n_points is None else n_points + 2
    bar = tqdm(total=options.starts * runs, desc=f"{network.name} ({args.method})", unit="start", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty(), leave=False)
    try:
        result = method.optimize(network, template, goal, options, n_points, lambda _res: bar.update(1))
    finally:
        bar.close()
    residency = None
    if args.keep_activations and result.best is not None:
        candidates = [result.best] + [r.best for r in result.starts if r.best is not None]
        residency = best_with_residency(network, template, candidates, goal)
        if residency is not None:
            result = replace(result, best=residency.best)
    doc = result_document(result, network, template, goal, method=args.method, seed=options.seed,
                          starts=options.starts, time_limit_s=options.time_limit_s, front=result.front)
    if args.keep_activations:
        doc["activation_residency"] = residency.document() if residency is not None else None
    bound = _attach_bound(args, doc, network, template, goal)
    path = write_results(out, doc, network, template, result.best, result.front)
    _print(f"{summary_table(doc)}{_residency_line(residency)}{_bound_line(bound)}\nwrote {path}")
    if result.status is OptimizeStatus.INTERRUPTED:
        print("codesign: interrupted; wrote the best design found so far", file=sys.stderr)
        return 130
    if result.best is None:
        why = f": {result.binding[0]}" if result.binding else ""
        print(f"codesign: no feasible design within the budget and caps{why}", file=sys.stderr)
        return 1
    return 0


def run_default_argv() -> list[str]:
    """The ``codesign optimize`` options of the built-in default job (``make run``)."""
    return ["--network", "resnet18", "--arch-template", "simple", "--area-budget", str(DEFAULT_AREA_BUDGET_MM2),
            "--objective", "edp", "--starts", str(DEFAULT_STARTS), "--jobs", "2",
            "--time-limit", str(DEFAULT_TIME_LIMIT_S), "--seed", "0", "--out", "out/run-default", "--force"]


def cmd_run_default(args) -> int:
    """The built-in default job (``make run``): co-design for ResNet-18 on the ``simple`` template.

    EDP objective, a binding area budget (:data:`DEFAULT_AREA_BUDGET_MM2`), :data:`DEFAULT_STARTS` starts
    on two workers within :data:`DEFAULT_TIME_LIMIT_S` in all, written to ``out/run-default/`` (its own
    folder, so it is overwritten), and the summary printed.
    """
    parser = argparse.ArgumentParser(prog="codesign optimize")
    add_optimize_arguments(parser)
    return cmd_optimize(parser.parse_args(run_default_argv()))
