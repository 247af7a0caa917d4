"""``codesign optimize`` after the search: polishing and the lower bound, one after the other or at once.

The time each phase gets comes from :mod:`search.plan` (``--total-time``, or the phases' own
options); this module runs them, shows their progress and records what they did in the result
document.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace

from tqdm import tqdm

from codesign.args import _number_arg, time_limit_arg
from formulation.specs.types import SpecError
from search.design import Goal
from search.outcome import OptimizeStatus
from search.plan import TimePlan, plan
from search.stop import stop_requested

#: ``--bound-nodes`` without ``--total-time`` (a run stopped by the node budget is reproducible).
DEFAULT_BOUND_NODES = 40


@dataclass(frozen=True)
class PhaseFailure:
    """A bug that ended polishing or the bound: the run goes on with what the search found, writes
    result.json, names the failure there and on stderr, and exits with status 3."""

    phase: str      # "polishing" or "lower bound"
    message: str    # the exception's type and text

    def line(self) -> str:
        return (f"{self.phase} failed ({self.message}); result.json holds the design found before it (a bug in "
                f"codesign; rerun with --debug for the traceback)")


def guarded(phase: str, args, failures: list, func, *a, **kw):
    """``func(*a, **kw)``, or None with a :class:`PhaseFailure` appended to ``failures`` when it raises a bug
    (an ``Exception``; with ``--debug`` it is raised). Interrupts (KeyboardInterrupt, and the stop's
    SystemError once a stop is requested) pass through: they are how a stop request ends a phase."""
    try:
        return func(*a, **kw)
    except Exception as exc:  # noqa: BLE001 (a bug in one phase must not lose the search's design)
        if getattr(args, "debug", False) or (isinstance(exc, SystemError) and stop_requested()):
            raise
        failures.append(PhaseFailure(phase, f"{type(exc).__name__}: {exc}"))
        return None


def time_plan(args, jobs: int, max_evaluations: int | None, front: bool = False) -> TimePlan:
    """The phases' budgets from ``--total-time``, ``--time-limit``, ``--polish-time`` and ``--bound-time``
    (checked before the search: a bad value is refused at once); ``front``: a ``--pareto`` run."""
    total = _number_arg(args.total_time, "--total-time", float, 0.0, strict=True)
    if total is not None:
        time_limit_arg(args.total_time, "--total-time")
    search = time_limit_arg(args.time_limit) if args.time_limit is not None else None
    polish = _number_arg(args.polish_time, "--polish-time", float, 0.0, strict=False)
    bound = _number_arg(args.bound_time, "--bound-time", float, 0.0, strict=False)
    if max_evaluations is not None and ((polish or 0) > 0 or (total is not None and polish is None)):
        flag, value = ("--polish-time", args.polish_time) if polish else ("--total-time", args.total_time)
        raise SpecError(f"{flag} = {value!r}: not with --max-evaluations (the exact mapper polishing the design "
                        "stops on time, so the result would no longer be reproducible; add --polish-time 0)")
    return plan(total, search_s=search, polish_s=polish, bound_s=bound, jobs=jobs, front=front)


def bound_nodes(args, time_plan_: TimePlan) -> int | None:
    """``--bound-nodes``, or its default: 40 without ``--total-time``, no node budget with it."""
    nodes = _number_arg(args.bound_nodes, "--bound-nodes", int, 1, strict=False)
    if nodes is None and time_plan_.total_s is None:
        return DEFAULT_BOUND_NODES
    return nodes


def polish_applies(result, method, n_points) -> bool:
    """Polishing runs on runs with a design (a front: its points), not for the exact method or an interrupted
    run."""
    if n_points is not None and (result.front is None or not result.front.points):
        return False
    return result.best is not None and method.name != "exact" and result.status is not OptimizeStatus.INTERRUPTED


def _polish_bar(args, seconds: float):
    """The polishing bar (seconds, moving whenever a layer's mapper run ends) and its callback."""
    bar = tqdm(total=round(seconds), desc="polish (exact mapper)", unit="s", file=sys.stderr, leave=False,
               disable=args.quiet or not sys.stderr.isatty(),
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")
    t0 = time.monotonic()
    done = []

    def layer_done(name: str) -> None:  # called from the polishing thread: the bar moves at each layer's end
        done.append(name)
        bar.update(min(time.monotonic() - t0, bar.total) - bar.n)
        bar.set_postfix_str(f"{len(done)} layer runs done, last {name}")

    return bar, layer_done


def run_polish(args, seconds: float, result, network, template, goal: Goal, options, failures: list, hint=None):
    """The best design's mappings polished by the exact mapper (:mod:`search.polish`) for ``seconds`` on
    ``--jobs`` workers, with the other starts' designs as transferred candidates; returns the result (its
    best replaced) and the report (None when ``seconds`` is 0). A bug in polishing keeps the search's
    design (:func:`guarded`; the report names the failure). A front (``--pareto``) goes to
    :func:`run_front_polish`. ``hint``: the bound's point to screen (:class:`search.refine.BoundHint`)."""
    if seconds <= 0:
        return result, None
    if result.front is not None:
        return run_front_polish(args, seconds, result, network, template, goal, options, failures)
    from search.refine import polish_with_hardware_steps

    others = tuple(r.best for r in result.starts if r.best is not None and r.best is not result.best)
    t0 = time.monotonic()
    bar, layer_done = _polish_bar(args, seconds)
    try:
        polished = guarded("polishing", args, failures, polish_with_hardware_steps, network, template, goal,
                           result.best, time_limit_s=seconds, seed=options.seed, on_layer_done=layer_done,
                           jobs=options.jobs, others=others, hint=hint)
    finally:
        bar.close()
    if polished is None:
        from search.polish import PolishReport

        value = result.best.score.value(goal.objective)
        return result, PolishReport(goal.objective, value, value, (), (), time.monotonic() - t0,
                                    error=next(f.message for f in reversed(failures) if f.phase == "polishing"))
    best, report = polished
    return replace(result, best=best), report


def root_hint(template, goal: Goal):
    """The bound's point when no branch-and-bound runs beside polishing: the whole template's box, whose
    point (largest mesh, smallest buffers) is where the least box starts (:class:`search.refine.BoundHint`)."""
    from formulation.bound.layer_terms import HardwareBox
    from search.refine import BoundHint

    hint = BoundHint(template, goal.area_budget_mm2)
    hint.offer(HardwareBox.of_template(template))
    return hint.hardware


def run_front_polish(args, seconds: float, result, network, template, goal: Goal, options, failures: list):
    """Every point of the run's front polished for power under its own latency (:func:`search.pareto.polish_front`)
    for ``seconds`` in all; returns the result chosen again from the new front for the goal, and the report
    (:class:`search.pareto.FrontPolish`; None after a bug in polishing, which keeps the front as it was)."""
    from search.pareto import polish_front

    bar, layer_done = _polish_bar(args, seconds)
    try:
        polished = guarded("polishing", args, failures, polish_front, network, template, goal, result.front,
                           time_limit_s=seconds, seed=options.seed, jobs=options.jobs, on_layer_done=layer_done)
    finally:
        bar.close()
    if polished is None:
        return result, None
    front, report = polished
    return front.best_for(network, template, goal), report


def bound_applies(args, goal: Goal, n_points, seconds: float) -> bool:
    from search.bnb import supports

    return not args.keep_activations and n_points is None and supports(goal.objective) and seconds > 0


def polish_and_bound(args, seconds: tuple[float, float], max_nodes, result, network, template, goal: Goal, options,
                     failures: list):
    """Polishing (a thread driving the mapper's workers) and the branch-and-bound (this thread) at the same
    time (:mod:`search.plan`); returns (result, polish report, bound result or None if interrupted or failed).

    The bound prunes with the search's best value (a design's, so pruning is safe); its gap is taken
    against the final design by :func:`record_bound`. The bound hands its least box to polishing's
    hardware steps (:class:`search.refine.BoundHint`). A stop request ends both with what they have
    (the bound then has none); a bug in either is recorded in ``failures`` and the other goes on.
    """
    from concurrent.futures import ThreadPoolExecutor

    from search.bnb import branch_and_bound
    from search.refine import BoundHint
    from search.stop import stop_interrupts

    polish_s, bound_s = seconds
    incumbent = result.best.score.value(goal.objective)
    hint = BoundHint(template, goal.area_budget_mm2)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(run_polish, args, polish_s, result, network, template, goal, options, failures,
                             hint.hardware)
        try:
            with stop_interrupts():
                bound = guarded("lower bound", args, failures, branch_and_bound, network, template, goal.objective,
                                goal.area_budget_mm2, incumbent=incumbent if math.isfinite(incumbent) else None,
                                time_limit_s=bound_s, max_nodes=max_nodes, rel_tol=gap_tolerance(args),
                                progress=not args.quiet, on_least=hint.offer)
        except (KeyboardInterrupt, SystemError):  # the stop's interrupt (SystemError when it lands in compiled code)
            if not stop_requested():
                raise
            bound = None
        result, report = future.result()
    return result, report, bound


def gap_tolerance(args) -> float:
    return _number_arg(args.gap_tolerance, "--gap-tolerance", float, 0.0, strict=False)


def record_bound(doc: dict, bound, args, goal: Goal, failure: PhaseFailure | None = None):
    """Put a bound computed beside polishing into the result document: its gap against the final design's
    value (``doc["totals"]``), and the status ``optimal`` when that gap is within the tolerance (as
    :func:`search.bnb.attach_bound` does for a bound computed after the design is final). Without a bound
    the document says why: the run was interrupted, or ``failure``."""
    from formulation.goals import Objective

    if bound is None:
        why = "the run was interrupted" if failure is None else f"internal error ({failure.message})"
        doc.update({"lower_bound": None, "gap": None,
                    "bound": {"covers": f"no bound: {why}", "gap_tolerance": gap_tolerance(args)}})
        return None
    totals = doc.get("totals")
    key = {Objective.EDP: "edp", Objective.ENERGY: "energy_pJ", Objective.LATENCY: "latency_s"}.get(goal.objective)
    value = totals.get(key) if totals is not None and totals.get("feasible") and key else None
    gap = None
    if value is not None and math.isfinite(bound.lower_bound) and bound.lower_bound > 0:
        gap = max(0.0, value / bound.lower_bound - 1)
    bound = replace(bound, incumbent=value, gap=gap)
    doc.update(bound.document())
    if bound.optimal and totals is not None:
        doc["status"] = "optimal"
    return bound


def attach_bound(args, doc: dict, network, template, goal: Goal, seconds: float, max_nodes, failures: list):
    """The lower bound and gap after the design is final (:func:`search.bnb.attach_bound`); none for
    --keep-activations runs, nor after a stop request (Ctrl-C, SIGTERM: the run ends now with its design,
    as when the bound runs beside polishing); with a front, half the time goes to the power band. A bug
    in the bound is recorded in ``failures`` and in the document (no bound), which is still written."""
    from search.bnb import attach_bound as attach

    if stop_requested():
        return record_bound(doc, None, args, goal)
    if args.keep_activations:
        doc.update({"lower_bound": None, "gap": None,
                    "bound": {"covers": "no bound: --keep-activations (outputs kept on chip between layers are "
                                        "outside the per-layer model the bound covers)"}})
        return None
    if doc.get("pareto") and seconds > 0:
        from search.bnb import power_band

        guarded("lower bound", args, failures, power_band, doc["pareto"], network, template, goal.area_budget_mm2,
                time_limit_s=seconds / 2, max_nodes=max_nodes)
        seconds /= 2
    failed = len(failures)
    bound = guarded("lower bound", args, failures, attach, doc, network, template, goal, time_limit_s=seconds,
                    max_nodes=max_nodes, rel_tol=gap_tolerance(args), progress=not args.quiet)
    if len(failures) > failed:
        record_bound(doc, None, args, goal, failures[-1])
    return bound


def polish_line(report) -> str:
    if report is None:
        return ""
    if hasattr(report, "reports"):  # a front's
        lower = [r for r in report.reports if r.after < r.before]
        return (f"\npolish: {len(report.reports)} front points polished for power under their latencies, "
                f"{len(lower)} lowered (at most {100 * max((1 - r.after / r.before for r in lower), default=0):.1f}%); "
                f"{report.points_before} -> {report.points_after} points; {report.wall_s:.1f} s")
    if report.error:
        return f"\npolish: failed ({report.error}); the search's design is kept"
    if report.skipped:
        return f"\npolish: skipped ({report.skipped})"
    steps = ""
    if report.hardware_tried:
        from_bound = sum(t.get("source") == "bound" for t in report.hardware_tried)
        origin = f" ({from_bound} from the bound's least box)" if from_bound else ""
        steps = f"{len(report.hardware_tried)} hardware points screened{origin}; "
    return (f"\npolish: {report.objective.value} {report.before:.4g} -> {report.after:.4g} "
            f"({100 * (1 - report.after / report.before):.1f}% lower; {steps}{len(report.changed)} layers changed, "
            f"{len(report.proven)} proven optimal for their own {report.objective.value}; {report.wall_s:.1f} s)")


def bound_line(bound) -> str:
    if bound is None:
        return ""
    gap = "" if bound.gap is None else f", gap {100 * bound.gap:.1f}% (tolerance {100 * bound.rel_tol:g}%)"
    return f"\nlower bound {bound.lower_bound:.4g} ({bound.nodes} nodes, {bound.wall_s:.1f} s){gap}"


def plan_line(time_plan_: TimePlan, search_s: float, polish_s: float, bound_s: float, concurrent: bool) -> str:
    """How ``--total-time`` was shared (empty without it)."""
    if time_plan_.total_s is None:
        return ""
    how = "at the same time" if concurrent else "in turn"
    return (f"\ntime: {time_plan_.total_s:g} s in all: search {search_s:.0f} s, then polishing up to {polish_s:.0f} s "
            f"and bound up to {bound_s:.0f} s {how}")
