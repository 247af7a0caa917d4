"""``codesign optimize`` and ``codesign run-default``: parse the options, run a registered method, write the result.

The methods themselves are in :mod:`search.methods`; this module only turns the command line into a
goal, a template and :class:`~search.methods.RunOptions`, shows progress and writes the files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from codesign.args import (
    MAX_EVALUATIONS,
    MAX_JOBS,
    MAX_SEED,
    MAX_STARTS,
    TEMPLATE_HELP,
    _number_arg,
    add_goal_options,
    add_solver_options,
    goal_args,
    pareto_points,
    relaxation_solver,
)
from codesign import phases
from codesign.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NO_DESIGN, EXIT_OK, report
from formulation.specs.catalog import load_arch, load_network, load_template
from formulation.specs.filenames import safe_component
from formulation.specs.template import default_template
from formulation.specs.types import SpecError
from search.design import Goal
from search.methods import METHODS, RunOptions, get_method
from search.optimize import fixed_template
from search.outcome import OptimizeStatus
from search.outdir import OutputDir
from search.residency import best_with_residency
from search.results import RESULT_FILE, result_document, summary_table, write_results

#: ``make run``: area budget (mm2) of the default job. The built-in ``simple`` architecture (16x16 PEs,
#: 256-word register files, 64Ki-word global buffer) takes 0.81 mm2; its template reaches 64x64 PEs and
#: 16x larger buffers (well over 10 mm2), so 2.0 mm2 binds: the optimizer must trade PEs against buffers.
DEFAULT_AREA_BUDGET_MM2 = 2.0
#: Four starts, two at a time, the search cut at 20 s (ResNet-18 starts take 5-20 s), all of ``make run`` in a
#: minute: what the search leaves goes to polishing and the bound, side by side (``--total-time``, README).
DEFAULT_STARTS = 4
DEFAULT_TIME_LIMIT_S = 20.0
DEFAULT_TOTAL_S = 60.0


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
    p.add_argument("--time-limit", metavar="SECONDS",
                   help="time budget of the search, shared by the starts (default 60; with --total-time, "
                        "15%% of it)")
    p.add_argument("--total-time", metavar="SECONDS",
                   help="wall-clock budget of the whole run: search, then polishing by the exact mapper and the "
                        "lower bound (at the same time with --jobs 2 or more), then writing the result; "
                        "--time-limit, --polish-time and --bound-time given too are kept as given "
                        "(README 'The whole pipeline in one budget')")
    p.add_argument("--jobs", default="2", help="parallel workers (default 2)")
    p.add_argument("--seed", default="0", help="random seed (default 0); with --max-evaluations the same seed gives "
                   "the same design on any machine, load or --jobs")
    p.add_argument("--max-evaluations", metavar="N", help="evaluation budget: stop after N exact-model mapping "
                   "evaluations (split over the starts); makes the result reproducible")
    p.add_argument("--starts", default="4", help="number of starts (default 4)")
    add_solver_options(p, "every start's relaxation and the weighted-sum baseline")
    p.add_argument("--backend", default="loky", help="loky (local processes, default) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --backend dask: a running Dask scheduler")
    p.add_argument("--out", metavar="DIR", help="output directory (default out/NETWORK-OBJECTIVE)")
    p.add_argument("--force", action="store_true", help="replace an existing result in --out (atomically)")
    p.add_argument("--keep-activations", action="store_true", help="let layer outputs stay in the outermost "
                   "on-chip buffer between layers (README 'Activation residency'); re-sizes that buffer for it "
                   "and reports the DRAM energy saved in result.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--polish-time", metavar="SECONDS",
                   help="after the search, at most this many seconds of the exact mapper on the best design's "
                        "layers at its hardware (on --jobs workers), keeping what lowers the network objective "
                        "(power under its latency cap; with --pareto, every front point for power under its own "
                        "latency; not with --max-evaluations; default 0: off, with --total-time what the search "
                        "leaves; README 'Polishing')")
    p.add_argument("--bound-time", metavar="SECONDS",
                   help="after the search, at most this many seconds of branch-and-bound for a proven lower "
                        "bound and gap (edp, energy, latency; 0: none; default 30, with --total-time what the "
                        "search leaves)")
    p.add_argument("--bound-nodes", metavar="N",
                   help="node budget of the branch-and-bound (reproducible where --bound-time does not cut it; "
                        "default 40, none with --total-time)")
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
    objective, area, caps = goal_args(args)
    return Goal(objective, area, caps)


def _run_options(args) -> RunOptions:
    if args.backend not in ("loky", "dask"):
        raise SpecError(f"--backend = {args.backend!r}: use loky or dask")
    if args.scheduler is not None and args.backend != "dask":
        raise SpecError(f"--scheduler = {args.scheduler!r}: needs --backend dask")
    solver, model_hooks = relaxation_solver(args)
    return RunOptions(starts=_number_arg(args.starts, "--starts", int, 1, strict=False, maximum=MAX_STARTS),
                      jobs=_number_arg(args.jobs, "--jobs", int, 1, strict=False, maximum=MAX_JOBS),
                      seed=_number_arg(args.seed, "--seed", int, 0, strict=False, maximum=MAX_SEED),
                      time_limit_s=60.0,
                      max_evaluations=_number_arg(getattr(args, "max_evaluations", None), "--max-evaluations", int, 1,
                                                  strict=False, maximum=MAX_EVALUATIONS),
                      backend=args.backend, scheduler=args.scheduler, solver=solver, model_hooks=model_hooks)


def _output_dir(args, network, goal: Goal) -> OutputDir:
    """``--out`` (default ``out/NETWORK-OBJECTIVE`` from a sanitized name: a name is never a path)."""
    default = Path("out") / safe_component(f"{network.name}-{goal.objective.value}")
    return OutputDir(args.out if args.out else default, args.force)


def _graceful_stop():
    """SIGINT/SIGTERM handlers for a search: the first signal asks every start to end with its best design
    (:mod:`search.stop`), a second one aborts (KeyboardInterrupt). Returns a function restoring the old ones."""
    import signal
    import threading

    from search.stop import request_stop

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    received = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt
        request_stop()
        print("codesign: stopping: the running starts end with their best designs (signal again to abort)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore():
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


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


def cmd_optimize(args) -> int:
    """Co-design hardware and per-layer mappings for a network; write result.json and friends to --out."""
    t_start = time.monotonic()
    method = get_method(args.method)
    goal = _optimize_goal(args)
    options = _run_options(args)
    n_points = pareto_points(args.pareto)
    plan = phases.time_plan(args, options.jobs, options.max_evaluations, front=n_points is not None)
    options = replace(options, time_limit_s=plan.search_s)
    if not args.network:
        raise SpecError("--network = None: name a built-in network or a network file")
    if args.keep_activations and n_points is not None:
        raise SpecError(f"--pareto = {n_points}: not with --keep-activations (it re-sizes one design)")
    method.check(options, n_points)
    network = load_network(args.network)
    template, fixed_hardware = _optimize_template(args)
    options = replace(options, fixed_hardware=fixed_hardware)
    method.check(options, n_points)
    max_nodes = phases.bound_nodes(args, plan)
    phases.gap_tolerance(args)  # checked now: a bad value must not wait for the search to end
    out = _output_dir(args, network, goal)
    staging = out.prepare()  # before any search: a bad --out is refused now, not after the run
    try:
        return _search_and_write(args, method, network, template, goal, options, n_points, out, staging,
                                 (plan, max_nodes, t_start))
    finally:
        out.discard()


def _after_search(args, result, method, network, template, goal, options, n_points, plan_info, failures):
    """Polishing and the bound as the time plan says (:mod:`search.plan`): (result, polish report, the bound
    if it was computed beside polishing, the bound's time if it is still to run, the plan's summary line).
    A bug in either phase is appended to ``failures`` and the run goes on (:func:`codesign.phases.guarded`)."""
    plan, max_nodes, t_start = plan_info
    polish_s, bound_s = (plan.polish_s, plan.bound_s) if plan.total_s is None else \
        plan.phases(time.monotonic() - t_start)
    search_s = time.monotonic() - t_start
    polishing = phases.polish_applies(result, method, n_points) and polish_s > 0
    if plan.concurrent and polishing and phases.bound_applies(args, goal, n_points, bound_s):
        result, polish_report, bound = phases.polish_and_bound(args, (polish_s, bound_s), max_nodes, result,
                                                               network, template, goal, options, failures)
        return result, polish_report, bound, None, phases.plan_line(plan, search_s, polish_s, bound_s, True)
    if polishing:
        result, polish_report = phases.run_polish(args, polish_s, result, network, template, goal, options,
                                                  failures, phases.root_hint(template, goal))
    else:
        polish_report = None
    if plan.total_s is not None and plan.bound_s is None:  # in turn: the bound gets what polishing left
        bound_s = plan.window(time.monotonic() - t_start)
    return result, polish_report, None, bound_s, phases.plan_line(plan, search_s, polish_s if polishing else 0.0,
                                                                  bound_s, False)


def _search_and_write(args, method, network, template, goal, options, n_points, out, staging, plan_info) -> int:
    """Run the search (a first SIGINT/SIGTERM ends it with the best designs so far), polish and bound, write the
    result into the staging folder and swap it in atomically. A bug in polishing or the bound still writes
    the result (with the design found before it) and then exits with status 3."""
    from search import stop

    runs = 1 if n_points is None else n_points + 2
    total, unit = method.progress_units(network, options, runs)
    bar = tqdm(total=total, desc=f"{network.name} ({args.method})", unit=unit, file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty(), leave=False)
    stop.reset()
    stop.use_stop_file(str(staging / ".stop"))
    restore = _graceful_stop()
    failures: list[phases.PhaseFailure] = []
    try:
        result = method.optimize(network, template, goal, options, n_points, lambda _res: bar.update(1))
        bar.close()
        result, polished, bound, bound_s, plan_text = _after_search(args, result, method, network, template, goal,
                                                                    options, n_points, plan_info, failures)
        if stop.stop_requested() and result.status is not OptimizeStatus.INTERRUPTED:
            result = replace(result, status=OptimizeStatus.INTERRUPTED)
        (staging / ".stop").unlink(missing_ok=True)
        residency = None
        if args.keep_activations and result.best is not None:
            candidates = [result.best] + [r.best for r in result.starts if r.best is not None]
            residency = best_with_residency(network, template, candidates, goal)
            if residency is not None:
                result = replace(result, best=residency.best)
        doc = result_document(result, network, template, goal, method=args.method, seed=options.seed,
                              starts=options.starts, time_limit_s=options.time_limit_s, front=result.front)
        doc["max_evaluations"] = options.max_evaluations
        doc["total_time_s"] = plan_info[0].total_s
        doc["polish"] = None if polished is None else polished.document()
        if args.keep_activations:
            doc["activation_residency"] = residency.document() if residency is not None else None
        if bound_s is None:
            bound_failure = next((f for f in failures if f.phase == "lower bound"), None)
            bound = phases.record_bound(doc, bound, args, goal, bound_failure)
        else:
            bound = phases.attach_bound(args, doc, network, template, goal, bound_s, plan_info[1], failures)
        write_results(staging, doc, network, template, result.best, result.front)
        path = out.commit() / RESULT_FILE
    finally:
        restore()
        bar.close()
        stop.reset()
    _print(f"{summary_table(doc)}{phases.polish_line(polished)}{_residency_line(residency)}"
           f"{phases.bound_line(bound)}{plan_text}\nwrote {path}")
    for failure in failures:
        report("internal error", failure.line())
    if result.status is OptimizeStatus.INTERRUPTED:
        print("codesign: interrupted; wrote the best design found so far"
              + ("" if result.best is not None else " (none yet)"), file=sys.stderr)
        return EXIT_INTERRUPTED
    if failures:
        return EXIT_INTERNAL
    if result.best is None:
        why = f": {result.binding[0]}" if result.binding else ""
        limit = " (time limit reached)" if result.status is OptimizeStatus.TIME_LIMIT else ""
        print(f"codesign: no feasible design within the budget and caps{limit}{why}", file=sys.stderr)
        return EXIT_NO_DESIGN
    return EXIT_OK


def run_default_argv() -> list[str]:
    """The ``codesign optimize`` options of the built-in default job (``make run``)."""
    return ["--network", "resnet18", "--arch-template", "simple", "--area-budget", str(DEFAULT_AREA_BUDGET_MM2),
            "--objective", "edp", "--starts", str(DEFAULT_STARTS), "--jobs", "2",
            "--time-limit", str(DEFAULT_TIME_LIMIT_S), "--total-time", str(DEFAULT_TOTAL_S), "--seed", "0",
            "--out", "out/run-default", "--force"]


def cmd_run_default(args) -> int:
    """The built-in default job (``make run``): co-design for ResNet-18 on the ``simple`` template.

    EDP objective, a binding area budget (:data:`DEFAULT_AREA_BUDGET_MM2`), :data:`DEFAULT_STARTS` starts
    on two workers within :data:`DEFAULT_TIME_LIMIT_S`, then polishing and the bound, :data:`DEFAULT_TOTAL_S`
    in all, written to ``out/run-default/`` (its own
    folder, so it is overwritten), and the summary printed.
    """
    parser = argparse.ArgumentParser(prog="codesign optimize")
    add_optimize_arguments(parser)
    return cmd_optimize(parser.parse_args(run_default_argv()))
