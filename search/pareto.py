"""Latency/power trade-off by the ε-constraint method, in the discrete design space.

:func:`pareto_front` runs the whole co-design pipeline (:func:`search.optimize.optimize`) several
times:

1. the latency range: minimize latency (its optimum is the fastest design, ``T_min``) and minimize
   power (the lowest-power design, whose latency is ``T_max``);
2. for ``n`` latency caps geometrically spaced from ``T_min`` to ``T_max``, minimize power subject
   to ``latency <= cap`` (:class:`~formulation.goals.Caps`);
3. keep the designs no other design beats on both latency and power.

Every run uses the same seed, so the front is deterministic for a seed (as long as no run stops at
its time limit). The caller's area budget and caps apply to every run; a caller's latency cap
also bounds the sweep. The time limit (a whole-run budget, as in :func:`~search.optimize.optimize`) is split evenly over the
``n + 2`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from formulation.goals import Objective
from formulation.specs.types import Network, SpecError
from formulation.specs.template import ArchTemplate
from formulation.pareto import non_dominated
from search.design import Evaluated, Goal, evaluate_design, exceeds
from search.optimize import optimize
from search.outcome import OptimizeResult, OptimizeStatus, StartResult, worse_status
from search.results import design_summary
from search.stop import stop_requested


@dataclass(frozen=True, eq=False)
class DesignPoint:
    """One discrete design on a latency/power front (the relaxation's points are
    :class:`formulation.relaxed.sweep.ParetoPoint`)."""

    latency_s: float
    power_mW: float
    evaluated: Evaluated
    run: str                     # "min-latency", "min-power" or "cap=<seconds>"
    latency_cap_s: float | None = None


@dataclass(frozen=True)
class SweepRun:
    label: str
    objective: Objective | None        # None: a multi-objective run (NSGA-II, a weighted-sum sweep)
    latency_cap_s: float | None
    result: OptimizeResult


@dataclass
class DesignFront:
    """A latency/power front of discrete designs from one or several runs (``--pareto``)."""

    points: list[DesignPoint]                  # non-dominated, by increasing latency
    candidates: list[DesignPoint]              # every feasible design the runs returned
    runs: list[SweepRun] = field(default_factory=list)
    latency_range_s: tuple[float, float] | None = None
    status: OptimizeStatus = OptimizeStatus.CONVERGED
    method: str = "epsilon-constraint"         # or a baseline's front: "nsga2", "weighted-sum"

    @property
    def wall_s(self) -> float:
        return sum(r.result.wall_s for r in self.runs)

    @property
    def evaluations(self) -> int:
        return sum(r.result.evaluations for r in self.runs)

    def best_for(self, network: Network, template: ArchTemplate, goal: Goal) -> OptimizeResult:
        """The candidate that is best for ``goal`` (re-scored under it), as one :class:`OptimizeResult`."""
        best, best_run = None, None
        for p in self.candidates:
            ev = evaluate_design(network, template, p.evaluated.design, goal)
            if ev.score.feasible and (best is None or ev.score.value(goal.objective) < best.score.value(goal.objective)):
                best, best_run = ev, p.run
        status = self.status
        if best is None and status in (OptimizeStatus.CONVERGED, OptimizeStatus.EVALUATION_LIMIT):
            status = OptimizeStatus.INFEASIBLE
        # a baseline's front comes from one run whose points carry their own labels: report that run's starts
        single = self.runs[0].result.starts if len(self.runs) == 1 else ()
        starts: tuple[StartResult, ...] = next((r.result.starts for r in self.runs if r.label == best_run), single)
        binding = next((r.result.binding for r in self.runs if r.result.binding), ())
        pipeline = self.runs[0].result.method if self.runs else "nlp+local-search"
        name = pipeline if pipeline == self.method else f"{self.method}({pipeline})"
        return OptimizeResult(status, name, best, starts, self.wall_s,
                              self.evaluations, binding, extra={"chosen_run": best_run}, front=self)

    @classmethod
    def from_designs(cls, method: str, result: OptimizeResult,
                     labelled: list[tuple[str, Evaluated | None]]) -> DesignFront:
        """The front of one multi-objective run's ``[(label, design or None)]`` (NSGA-II, a weighted-sum sweep)."""
        candidates = [DesignPoint(ev.score.latency_s, ev.score.power_mW, ev, label) for label, ev in labelled
                      if ev is not None and ev.score.feasible and math.isfinite(ev.score.latency_s)
                      and math.isfinite(ev.score.power_mW)]
        points = front_points(candidates)
        span = (points[0].latency_s, points[-1].latency_s) if points else None
        return cls(points, candidates, [SweepRun(method, None, None, result)], span, result.status, method)

    def document(self, template: ArchTemplate) -> dict:
        def point(p: DesignPoint) -> dict:
            return {"run": p.run, "latency_cap_s": p.latency_cap_s, **design_summary(template, p.evaluated)}

        return {"method": self.method, "axes": ["latency_s", "power_mW"],
                "latency_range_s": list(self.latency_range_s) if self.latency_range_s else None,
                "status": self.status.value,
                "points": [point(p) for p in self.points],
                "dominated": [point(p) for p in self.candidates if p not in self.points],
                "runs": [{"run": r.label, "objective": r.objective.value if r.objective is not None else None,
                          "latency_cap_s": r.latency_cap_s,
                          "status": r.result.status.value, "wall_s": r.result.wall_s,
                          "evaluations": r.result.evaluations,
                          "latency_s": r.result.best.score.latency_s if r.result.best else None,
                          "power_mW": r.result.best.score.power_mW if r.result.best else None}
                         for r in self.runs]}


@dataclass(frozen=True)
class FrontPolish:
    """What polishing a front did: one report per point polished, the number of points before and after."""

    reports: tuple            # search.polish.PolishReport per polished point, in the front's order
    points_before: int
    points_after: int
    wall_s: float

    def document(self) -> dict:
        return {"front": [r.document() for r in self.reports], "points_before": self.points_before,
                "points_after": self.points_after, "wall_s": self.wall_s}


def polish_front(network: Network, template: ArchTemplate, goal: Goal, front: DesignFront, *, time_limit_s: float,
                 seed: int = 0, jobs: int = 1, on_layer_done: Callable[[str], None] | None = None
                 ) -> tuple[DesignFront, FrontPolish]:
    """Every point of ``front`` polished for power under its own latency, and the front taken again.

    Point ``p`` (latency ``T_p``, power ``P_p``) is polished at its hardware with the goal "least power,
    latency at most ``T_p``" (and the caller's other caps; :func:`search.polish.polish`: the exact mapper
    minimizes each layer's energy, and the combination and descent minimize the network's power under the
    cap), with ``time_limit_s`` split evenly over the points. The polished design is at most as slow
    (the cap) and draws at most as much power (polishing never worsens its objective), so it weakly
    dominates ``p``; it joins the candidates and the front is taken again from all of them. Every old
    point is therefore weakly dominated by a new one. A stop request leaves the points not yet polished
    as they are.
    """
    import time

    from search.polish import polish

    t0 = time.monotonic()
    reports, added = [], []
    for k, p in enumerate(front.points):
        left = time_limit_s - (time.monotonic() - t0)
        if left <= 0 or stop_requested():
            break
        cap = p.latency_s if goal.caps.latency_s is None else min(p.latency_s, goal.caps.latency_s)
        point_goal = Goal(Objective.POWER, goal.area_budget_mm2, replace(goal.caps, latency_s=cap))
        start = evaluate_design(network, template, p.evaluated.design, point_goal)
        if not start.score.feasible:  # the caller's other caps: a front point always meets them, but be sure
            continue
        polished, report = polish(network, template, point_goal, start, time_limit_s=left / (len(front.points) - k),
                                  seed=seed, jobs=jobs, on_layer_done=on_layer_done)
        reports.append(report)
        if polished is not start:
            added.append(DesignPoint(polished.score.latency_s, polished.score.power_mW, polished,
                                     f"{p.run}+polish", p.latency_cap_s))
    candidates = front.candidates + added
    new = DesignFront(front_points(candidates), candidates, front.runs, front.latency_range_s, front.status,
                      front.method)
    return new, FrontPolish(tuple(reports), len(front.points), len(new.points), time.monotonic() - t0)


def front_points(points: list[DesignPoint]) -> list[DesignPoint]:
    """The points no other point beats on both latency and power (ties: the first kept), by latency
    (:func:`formulation.pareto.non_dominated`, within a relative 1e-12)."""
    keep = non_dominated([(p.latency_s, p.power_mW) for p in points], rel_tol=1e-12)
    return [points[k] for k in keep]


def latency_caps(t_min: float, t_max: float, n: int) -> list[float]:
    """``n`` caps spaced geometrically from ``t_min`` to ``t_max`` (both included when ``n >= 2``)."""
    if n < 1:
        raise SpecError(f"--pareto = {n}: needs at least 1 point")
    if n == 1 or not exceeds(t_max, t_min):
        return [t_max]
    return [float(v) for v in np.geomspace(t_min, t_max, n)]


def pareto_front(network: Network, template: ArchTemplate, goal: Goal, n_points: int, *, starts: int = 4,
                 jobs: int = 2, seed: int = 0, solver: str = "cyipopt", fixed_hardware: bool = False,
                 time_limit_s: float = 120.0, backend: str = "loky", scheduler: str | None = None,
                 on_start_done: Callable | None = None,
                 on_run_done: Callable[[SweepRun], None] | None = None, model_hooks: tuple = (),
                 max_evaluations: int | None = None) -> DesignFront:
    """Non-dominated (latency, power) designs from ``n_points`` power minimizations under latency caps.

    ``goal`` supplies the area budget and any caps (its objective is not used here).
    """
    if n_points < 1:
        raise SpecError(f"--pareto = {n_points}: needs at least 1 point")
    per_run = time_limit_s / (n_points + 2)
    evals_per_run = None if max_evaluations is None else max(1, max_evaluations // (n_points + 2))
    runs: list[SweepRun] = []
    status = OptimizeStatus.CONVERGED

    def run(label: str, objective: Objective, cap: float | None) -> SweepRun:
        nonlocal status
        caps = goal.caps
        if cap is not None:
            caps = replace(caps, latency_s=cap if caps.latency_s is None else min(cap, caps.latency_s))
        try:
            result = optimize(network, template, Goal(objective, goal.area_budget_mm2, caps), starts=starts,
                              jobs=jobs, seed=seed, solver=solver, fixed_hardware=fixed_hardware,
                              time_limit_s=per_run, backend=backend, scheduler=scheduler,
                              on_start_done=on_start_done, model_hooks=model_hooks,
                              max_evaluations=evals_per_run)
        except KeyboardInterrupt:  # between starts, outside optimize's own handler
            result = OptimizeResult(OptimizeStatus.INTERRUPTED, "nlp+local-search", None, (), 0.0, 0)
        sweep = SweepRun(label, objective, cap, result)
        runs.append(sweep)
        if result.status is not OptimizeStatus.INFEASIBLE:
            status = worse_status(status, result.status)
        if on_run_done is not None:
            on_run_done(sweep)
        return sweep

    def interrupted() -> bool:
        return status is OptimizeStatus.INTERRUPTED or stop_requested()

    fastest = run("min-latency", Objective.LATENCY, None)
    lowest = None if interrupted() else run("min-power", Objective.POWER, None)
    t_range = None
    if fastest.result.best is not None and lowest is not None and lowest.result.best is not None:
        # The latency run's local search can stop short of the fastest design; take the faster of the two.
        t_min = min(fastest.result.best.score.latency_s, lowest.result.best.score.latency_s)
        t_max = lowest.result.best.score.latency_s
        if goal.caps.latency_s is not None:
            t_max = min(t_max, goal.caps.latency_s)
        t_range = (t_min, t_max)
        for cap in latency_caps(t_min, t_max, n_points):
            if interrupted():
                break
            run(f"cap={cap:.6g}", Objective.POWER, cap)

    candidates = []
    for r in runs:
        best = r.result.best
        if best is None or not best.score.feasible:
            continue
        if not math.isfinite(best.score.latency_s) or not math.isfinite(best.score.power_mW):
            continue
        candidates.append(DesignPoint(best.score.latency_s, best.score.power_mW, best, r.label, r.latency_cap_s))
    if not candidates and status is OptimizeStatus.CONVERGED:
        status = OptimizeStatus.INFEASIBLE
    return DesignFront(front_points(candidates), candidates, runs, t_range, status)
