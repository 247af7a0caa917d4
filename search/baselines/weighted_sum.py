"""Weighted-sum baseline: this project's relaxation, rounding and local search, scalarized by weights.

Instead of the ε-constraint (minimize power subject to a latency cap), every weight ``w`` in
``n_weights`` evenly spaced values of [0, 1] minimizes

    s_w = w (ln P - ln P_ref) / span_P + (1 - w) (ln T - ln T_ref) / span_T + rho (both terms)

(``P`` power, ``T`` latency, ``rho = 1e-4`` so that no end point is weakly dominated), and the
non-dominated designs of the ``n_weights`` results are returned. The pipeline per weight is the
project's: solve the continuous relaxation (default loop orders, IPOPT through the solver
registry), round it to a legal design (:func:`search.rounding.round_solution`), then improve it
with the exact model by the project's one local search (:func:`search.local_search.local_search`:
layer neighbours, hardware steps with repair; no kicks) scored by :class:`WeightedScore`, i.e.
under ``s_w`` instead of a single objective.

Normalization. The relaxation can't supply it: its fast and efficient ends
(:func:`formulation.relaxed.sweep.anchors`) often have the same latency, and its latencies are far
from the exact model's. So the two end weights run first: ``w = 0`` from the rounded
minimum-latency relaxation and ``w = 1`` from the rounded minimum-energy relaxation (the
relaxation of minimum power is unbounded: idling lowers it). Their exact designs give the
utopia ``(P_ref, T_ref)`` and the spans ``ln(P_nadir / P_ref)``, ``ln(T_nadir / T_ref)``. The
interior weights then solve :class:`formulation.relaxed.sweep.WeightedSumProblem` (the sweep's wrapper
with the RelaxedProblem callback API) with that same normalization, warm-started from the
minimum-latency solution, and run the local search under the same ``s_w``. Where the
weights make the coefficient of ``ln T`` in the relaxed objective negative, the relaxation's
cycle variables drift to their bounds (idling) and its tiling minimizes energy. Rounding ignores
the cycle variables, and the exact local search applies the true weights.

Budget: relaxed solves get ``time_limit_s / (4 n_weights)`` each (at least one second; IPOPT's
CPU-time limit, so a solve cut short by it may differ between runs). The remaining wall time
and ``max_evaluations`` (exact-model mapping evaluations, split evenly over the weights) bound
the local searches. With an evaluation budget and enough time the result depends only on the
inputs (``seed`` is not used: nothing is random). ``jobs`` runs the local searches of a phase in
parallel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from joblib import delayed

from formulation.goals import Caps, Objective, objective_value, power_mW
from formulation.relaxed.problem import RelaxedProblem
from formulation.relaxed.solvers import get_backend
from formulation.relaxed.sweep import WeightedSumProblem, anchors, tight_cycles
from formulation.specs.types import Network, SpecError
from formulation.technology import architecture_area_mm2
from formulation.specs.template import ArchTemplate, Hardware
from search.baselines.evaluation import Progress, Tracker
from search.baselines.space import DesignSpace, ParetoArchive
from search.design import Design, Evaluated, Goal, exceeds, objective_values
from search.local_search import GoalScore, hardware_neighbours, local_search, repaired_design
from search.outcome import Budget, OptimizeResult, StartResult
from search.rounding import round_solution
from search.stop import loky_parallel

METHOD = "weighted-sum"
RHO = 1e-4          # augmentation: a small share of both terms, so the ends are not weakly dominated
MIN_SPAN = 1e-3     # smallest normalization span (natural-log units)


@dataclass(frozen=True)
class Scalarization:
    """``s = w p + (1 - w) t + rho (p + t)`` with ``p, t`` the normalized ln power and ln latency."""

    weight: float
    ln_p_ref: float = 0.0
    ln_t_ref: float = 0.0
    span_p: float = 1.0
    span_t: float = 1.0

    def values(self, energy_pJ: np.ndarray, latency_s: np.ndarray, area_mm2: float, goal: Goal) -> np.ndarray:
        """Vectorized ``s``; +inf where the area budget or a cap of ``goal`` is broken."""
        energy_pJ, latency_s = np.asarray(energy_pJ, dtype=float), np.asarray(latency_s, dtype=float)
        p = (np.log(power_mW(energy_pJ, latency_s)) - self.ln_p_ref) / self.span_p
        t = (np.log(latency_s) - self.ln_t_ref) / self.span_t
        s = self.weight * p + (1 - self.weight) * t + RHO * (p + t)
        feasible = np.isfinite(objective_values(energy_pJ, latency_s, area_mm2, goal))
        return np.where(feasible, s, np.inf)


class WeightedScore(GoalScore):
    """The local search's scoring (:class:`search.local_search.GoalScore`) under a :class:`Scalarization`.

    ``s`` can be negative, so an improvement is an absolute drop of more than ``1e-12 max(1, |s|)``.
    """

    def __init__(self, scal: Scalarization, goal: Goal):
        super().__init__(goal)
        self.scal = scal

    def values(self, energy_pJ: np.ndarray, latency_s: np.ndarray, area_mm2: float) -> np.ndarray:
        return self.scal.values(energy_pJ, latency_s, area_mm2, self.goal)

    def of(self, evaluated: Evaluated) -> float:
        s = evaluated.score
        return float(self.values(s.energy_pJ, s.latency_s, s.area_mm2))

    def improves(self, new: float, old: float) -> bool:
        return new < old - 1e-12 * max(1.0, abs(old))


def fit_area(template: ArchTemplate, hw: Hardware, budget_mm2: float) -> Hardware:
    """``hw`` if it is within the area budget, else hardware steps down until it is (largest fitting step first).

    Rounding the relaxed hardware can land just over the budget, where every design is
    infeasible and a local search has nothing to compare.
    """
    def area(h: Hardware) -> float:
        return architecture_area_mm2(template.instantiate(h))

    current = area(hw)
    while exceeds(current, budget_mm2):
        smaller = [(area(h), h) for h in hardware_neighbours(template, hw)]
        smaller = [(a, h) for a, h in smaller if a < current]
        if not smaller:
            break
        fitting = [(a, h) for a, h in smaller if not exceeds(a, budget_mm2)]
        current, hw = max(fitting, key=lambda ah: ah[0]) if fitting else min(smaller, key=lambda ah: ah[0])
    return hw


def weighted_local_search(network: Network, template: ArchTemplate, start: Design, goal: Goal, scal: Scalarization,
                          fixed_hardware: bool, time_limit_s: float, max_evaluations: float = math.inf,
                          max_hardware_steps: int = 20) -> tuple[Evaluated, int, str]:
    """:func:`search.local_search.local_search` scored by :class:`WeightedScore`, without kicks, from the
    start's hardware stepped down into the area budget (:func:`fit_area`).

    Returns the final design, the mapping evaluations used and why it stopped (``converged``,
    ``evaluations`` or ``time``). Neighbour batches are cut to the remaining evaluations, so an
    evaluation budget gives the same result every time.
    """
    budget = Budget(time_limit_s, max_evaluations)
    if goal.area_budget_mm2 is not None and not fixed_hardware:
        hw = fit_area(template, start.hardware, goal.area_budget_mm2)
        if hw != start.hardware:
            start = repaired_design(network, template, start, hw)
    current, _ = local_search(network, template, start, goal, fixed_hardware, max_hardware_steps=max_hardware_steps,
                              kicks_per_layer=0, score=WeightedScore(scal, goal), budget=budget)
    return current, budget.evaluations, budget.reason


@dataclass(frozen=True)
class _Run:
    index: int
    weight: float
    final: Evaluated | None
    evaluations: int
    stopped_by: str
    wall_s: float
    solver_status: str
    relaxed_objective: float | None
    message: str = ""


def _local_task(network, template, goal, start: Design, scal: Scalarization, fixed_hardware: bool, time_limit_s: float,
                max_evaluations: float) -> tuple[Evaluated, int, str, float]:
    t0 = time.monotonic()
    final, evaluations, stopped_by = weighted_local_search(network, template, start, goal, scal, fixed_hardware,
                                                           time_limit_s, max_evaluations)
    return final, evaluations, stopped_by, time.monotonic() - t0


def _run_local(tasks: list[tuple], jobs: int):
    """Yield the results of ``_local_task`` in task order."""
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield _local_task(*task)
        return

    yield from loky_parallel(min(jobs, len(tasks)), return_as="generator")(
        delayed(_local_task)(*task) for task in tasks)


class _Solve:
    """A relaxed solve with fixed options, callable as :func:`formulation.relaxed.sweep.anchors` expects."""

    def __init__(self, solver: str, time_limit_s: float, max_iter: int = 300):
        self.backend = get_backend(solver)
        self.time_limit_s = time_limit_s
        self.max_iter = max_iter
        self.timed_out = False  # a solve stopped at its time limit (then the result may vary from run to run)

    def __call__(self, problem, x0=None, previous=None):
        result = self.backend.solve(problem, x0=x0, max_iter=self.max_iter, time_limit_s=self.time_limit_s)
        self.timed_out = self.timed_out or "time limit" in (result.message or "")
        return result


def _relaxed_goal_value(problem: RelaxedProblem, x: np.ndarray, objective: Objective) -> float | None:
    totals = problem.totals(tight_cycles(problem, x))
    return objective_value(objective, totals["energy_pJ"].value, totals["latency_s"].value)


def _normalization(fast: Evaluated | None, slow: Evaluated | None) -> Scalarization:
    """The utopia ``(P_ref, T_ref)`` and the log spans to the nadir from the two end weights' designs
    (module docstring); the unnormalized ``Scalarization(0)`` when either end has no feasible design."""
    if fast is None or slow is None or not (fast.score.feasible and slow.score.feasible):
        return Scalarization(0.0)
    p_ref = min(fast.score.power_mW, slow.score.power_mW)
    t_ref = min(fast.score.latency_s, slow.score.latency_s)
    p_nadir = max(fast.score.power_mW, slow.score.power_mW)
    t_nadir = max(fast.score.latency_s, slow.score.latency_s)
    return Scalarization(0.0, math.log(p_ref), math.log(t_ref), max(math.log(p_nadir / p_ref), MIN_SPAN),
                         max(math.log(t_nadir / t_ref), MIN_SPAN))


def _result(tracker: Tracker, archive: ParetoArchive, runs: list[_Run], norm: Scalarization, evaluations: int,
            interrupted: bool, solve_timed_out: bool = False) -> OptimizeResult:
    """The run's result: the front of the weights' designs, its best design for the goal, one start per weight.
    A relaxed solve cut by its time limit makes the status ``time_limit`` (the result may then vary)."""
    goal = tracker.goal
    runs.sort(key=lambda r: r.index)
    stops = {r.stopped_by for r in runs}
    tracker.stopped_by = "time" if "time" in stops or solve_timed_out else \
        "evaluations" if "evaluations" in stops else "converged"
    tracker.best = archive.best(goal)
    start_results = tuple(StartResult(r.index, r.final, r.relaxed_objective, r.solver_status, r.evaluations, r.wall_s,
                                      f"w = {r.weight:.3g}" + (f": {r.message}" if r.message else ""))
                          for r in runs)
    extra = {"front": archive.front(), "front_objectives": ("power_mW", "latency_s"),
             "weights": [(r.weight, r.final) for r in runs],
             "normalization": {"ln_p_ref": norm.ln_p_ref, "ln_t_ref": norm.ln_t_ref, "span_p": norm.span_p,
                               "span_t": norm.span_t}}
    return tracker.result(evaluations, interrupted, starts=start_results, extra=extra)


def _interior_starts(free: RelaxedProblem, solve: _Solve, weights: list[float], norm: Scalarization,
                     x_fast: np.ndarray, objective: Objective) -> tuple[list, list, list]:
    """Per interior weight: the rounded relaxed start (None when the solve failed), its scalarization with
    ``norm``'s normalization, and (solver status, relaxed goal value); solves warm-started from ``x_fast``."""
    starts, scals, statuses = [], [], []
    for w in weights:
        wrapped = WeightedSumProblem(free, "power", w, (math.exp(norm.ln_p_ref), math.exp(norm.ln_t_ref)),
                                     (norm.span_p, norm.span_t))
        result = solve(wrapped, x0=x_fast)
        ok = result.ok
        starts.append(round_solution(free, result.x) if ok else None)
        scals.append(Scalarization(w, norm.ln_p_ref, norm.ln_t_ref, norm.span_p, norm.span_t))
        statuses.append((result.status.value, _relaxed_goal_value(free, result.x, objective) if ok else None))
    return starts, scals, statuses


def run_weighted_sum(network: Network, template: ArchTemplate, goal: Goal, *, seed: int, time_limit_s: float,
                     max_evaluations: int | None = None, fixed_hardware: bool = False, jobs: int = 1,
                     on_progress: Callable[[Progress], None] | None = None, n_weights: int = 5,
                     solver: str = "cyipopt", model_hooks: tuple = ()) -> OptimizeResult:
    """Weighted sums of normalized ln power and ln latency, ``n_weights >= 2`` weights (module docstring).

    ``extra``: ``front`` (the non-dominated designs among the weights' results, fastest first),
    ``weights`` (``[(w, design or None)]`` in weight order), ``normalization`` and ``history``
    (best goal objective among the finished weights, one entry per weight). ``best`` is the front
    design with the best goal objective. ``fixed_hardware`` pins the hardware to the template's
    base hardware on the legal grid.
    """
    del seed  # deterministic: nothing is drawn at random
    if n_weights < 2:
        raise SpecError(f"n_weights = {n_weights}: a weighted-sum front needs at least 2 weights")
    space = DesignSpace(network, template, fixed_hardware)
    template = space.template
    tracker = Tracker(METHOD, goal, time_limit_s, max_evaluations, on_progress)
    early = tracker.infeasible_area(space)
    if early is not None:
        return early
    weights = [k / (n_weights - 1) for k in range(n_weights)]
    per_run = [math.inf] * n_weights
    if max_evaluations is not None:
        per_run = [max_evaluations // n_weights + (k < max_evaluations % n_weights) for k in range(n_weights)]
    solve = _Solve(solver, max(1.0, time_limit_s / (4 * n_weights)))
    if not solve.backend.available():
        raise SpecError(f"--solver = {solver!r}: not installed (the weighted-sum baseline solves the relaxation)")
    problem = RelaxedProblem(network, template, goal.objective, goal.area_budget_mm2, goal.caps,
                             model_hooks=model_hooks)
    free = problem.with_caps(Caps())
    runs: list[_Run] = []
    norm = Scalarization(0.0)
    archive = ParetoArchive()
    evaluations = 0
    interrupted = False

    def waves(n: int) -> int:
        return -(-n // max(1, jobs))

    def run_phase(indices: list[int], starts: list[Design | None], scals: list[Scalarization],
                  statuses: list[tuple[str, float | None]], share: float) -> None:
        nonlocal evaluations
        time_each = max(0.0, time_limit_s - tracker.elapsed()) * share / max(1, waves(len(indices)))
        tasks, where = [], []
        for k, start, scal, (status, relaxed) in zip(indices, starts, scals, statuses):
            if start is None:
                runs.append(_Run(k, weights[k], None, 0, "no start", 0.0, status, relaxed, "relaxation failed"))
                continue
            tasks.append((network, template, goal, start, scal, fixed_hardware, time_each, per_run[k]))
            where.append((k, status, relaxed))
        for (k, status, relaxed), (final, used, stopped, wall) in zip(where, _run_local(tasks, jobs)):
            evaluations += used
            runs.append(_Run(k, weights[k], final, used, stopped, wall, status, relaxed))
            if final.score.feasible:
                archive.add_evaluated([final])
                tracker.offer(final.score.value(goal.objective), lambda: final)
            tracker.record(evaluations, f"w = {weights[k]:.3g}: {stopped}")

    try:
        try:
            _, results = anchors(problem, solve, "power")
        except SpecError as exc:
            tracker.stopped_by = "infeasible"
            return tracker.result(0, binding=(str(exc),))
        # phase 1: the end weights, from the rounded minimum-latency and minimum-energy relaxations
        ends = [0, n_weights - 1]
        starts = [round_solution(free, results["fast"].x), round_solution(free, results["efficient"].x)]
        statuses = [(results["fast"].status.value, _relaxed_goal_value(free, results["fast"].x, goal.objective)),
                    (results["efficient"].status.value,
                     _relaxed_goal_value(free, results["efficient"].x, goal.objective))]
        run_phase(ends, starts, [Scalarization(0.0), Scalarization(1.0)], statuses,
                  share=waves(2) / (waves(2) + waves(n_weights - 2)))
        by_index = {r.index: r for r in runs}
        norm = _normalization(by_index[0].final, by_index[n_weights - 1].final)
        # phase 2: the interior weights, relaxed with the same normalization, warm-started from minimum latency
        interior = list(range(1, n_weights - 1))
        run_phase(interior, *_interior_starts(free, solve, [weights[k] for k in interior], norm, results["fast"].x,
                                              goal.objective), share=1.0)
    except KeyboardInterrupt:
        interrupted = True
    return _result(tracker, archive, runs, norm, evaluations, interrupted, solve.timed_out)


__all__ = ["Scalarization", "fit_area", "run_weighted_sum", "weighted_local_search"]
