"""The co-design pipeline: relax, solve, round, improve — from several starts in parallel.

Each start fixes the discrete choices of every layer (loop orders and the mesh axis of each
spatial dimension, :class:`~formulation.relaxed.problem.LayerStructure`), solves the continuous
relaxation for them (IPOPT through the registry, warm-started from start 0's solution), rounds the
optimum to a legal design (:mod:`search.rounding`) and runs the local search
(:mod:`search.local_search`). Start 0 uses the default structure; start ``k`` draws its structure
from ``numpy.random.default_rng((seed, k))``, so the same seed gives the same result. Starts run
as joblib tasks (``backend="loky"``) or on a Dask cluster (``backend="dask"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from joblib import delayed

from formulation.axes import DIMS, Dim
from formulation.relaxed.problem import LayerStructure, RelaxedProblem, default_structure
from formulation.relaxed.solvers import get_backend
from formulation.relaxed.sensitivity import Structure
from formulation.specs.types import Architecture, Network, SpecError
from formulation.specs.template import ArchTemplate
from search.design import Goal
from search.local_search import local_search
from search.outcome import Budget, OptimizeResult, OptimizeStatus, StartResult
from search.rounding import round_solution
from search.stop import leave_signals_to_the_parent, loky_parallel, stop_file, stop_requested, use_stop_file

# Loop orders that differ in reuse, innermost first: reduction loops innermost (outputs stay),
# output-pixel loops innermost (weights stay), output-channel loops innermost (inputs stay).
CANONICAL_ORDERS = {
    "output-stationary": (Dim.R, Dim.S, Dim.C, Dim.K, Dim.P, Dim.Q, Dim.N),
    "weight-stationary": (Dim.P, Dim.Q, Dim.N, Dim.R, Dim.S, Dim.C, Dim.K),
    "input-stationary": (Dim.K, Dim.R, Dim.S, Dim.C, Dim.P, Dim.Q, Dim.N),
}
SPATIAL_SPLITS = (
    ((Dim.K, Dim.P), (Dim.C, Dim.Q, Dim.N)),
    ((Dim.K, Dim.Q), (Dim.C, Dim.P, Dim.N)),
    ((Dim.K,), (Dim.C, Dim.P, Dim.Q, Dim.N)),
    ((Dim.P, Dim.Q), (Dim.K, Dim.C, Dim.N)),
)


def random_structure(template: ArchTemplate, rng: np.random.Generator) -> LayerStructure:
    levels = len(template.base.levels)
    names = sorted(CANONICAL_ORDERS)
    order = np.array([[int(d) for d in CANONICAL_ORDERS[names[rng.integers(len(names))]]] for _ in range(levels)])
    keep = np.array([[t in lv.keeps for t in range(3)] for lv in template.base.levels])
    x_dims, y_dims = SPATIAL_SPLITS[rng.integers(len(SPATIAL_SPLITS))]
    return LayerStructure(Structure(order, keep, np.ones((levels, len(DIMS)), dtype=bool)), x_dims, y_dims)


def structures_for_start(network: Network, template: ArchTemplate, seed: int, start: int) -> list[LayerStructure]:
    if start == 0:
        return [default_structure(template) for _ in network.layers]
    rng = np.random.default_rng((seed, start))
    return [random_structure(template, rng) for _ in network.layers]


def fixed_template(arch: Architecture) -> ArchTemplate:
    """A template whose hardware ranges are the single point ``arch`` (Timeloop-mapper style runs)."""
    mac = arch.mac
    sizes = tuple((lv.name, lv.size_words, lv.size_words) for lv in arch.levels if lv.size_words is not None)
    return ArchTemplate(name=arch.name, base=arch, mesh_x_range=(mac.mesh_x, mac.mesh_x),
                        mesh_y_range=(mac.mesh_y, mac.mesh_y), size_ranges=sizes)


def run_start(network: Network, template: ArchTemplate, goal: Goal, seed: int, start: int, solver: str,
              fixed_hardware: bool, time_limit_s: float, x0: np.ndarray | None = None,
              model_hooks: tuple = (), *, deadline_epoch_s: float = math.inf, max_evaluations: int | None = None,
              stop_path: str | None = None) -> StartResult:
    """One start: relax with this start's structures, solve, round, improve.

    ``solver`` names the backend of the relaxation; ``model_hooks`` change its Pyomo model
    (:mod:`formulation.relaxed.hooks`). The start ends by ``time_limit_s`` and by the whole run's
    ``deadline_epoch_s`` (``time.time()``, shared across processes), whichever comes first; a start
    with no time left returns at once. With ``max_evaluations`` the local search stops
    deterministically after that many mapping evaluations. ``stop_path`` is the run's stop file
    (:mod:`search.stop`): a stop request ends the start with its best design so far (the rounded
    relaxation at least, when the request came during the solve).
    """
    t0 = time.monotonic()
    if stop_path is not None:
        use_stop_file(stop_path)
        leave_signals_to_the_parent()
    limit = min(time_limit_s, deadline_epoch_s - time.time())
    if limit <= 0 or stop_requested():
        return StartResult(start, None, None, "not_started", 0, 0.0, "no time left" if limit <= 0 else "stopped",
                           timed_out=limit <= 0)
    structures = structures_for_start(network, template, seed, start)
    problem = RelaxedProblem(network, template, goal.objective, goal.area_budget_mm2, goal.caps, structures,
                             model_hooks)
    solve_limit = max(0.05, (limit - (time.monotonic() - t0)) / 2)
    result = get_backend(solver).solve(problem, x0=x0, max_iter=300, time_limit_s=solve_limit)
    if not result.ok:
        return StartResult(start, None, None, result.status.value, 0, time.monotonic() - t0,
                           result.message or ", ".join(result.binding))
    solve_timed_out = "time limit" in (result.message or "")
    design = round_solution(problem, result.x)
    remaining = max(0.0, limit - (time.monotonic() - t0))
    best, budget = local_search(network, template, design, goal, fixed_hardware=fixed_hardware, seed=(seed, start),
                                budget=Budget(remaining, max_evaluations))
    return StartResult(start, best, float(np.exp(result.objective)) if result.objective is not None else None,
                       result.status.value, budget.evaluations, time.monotonic() - t0,
                       "stopped" if budget.stopped_by == Budget.INTERRUPTED else "",
                       timed_out=budget.timed_out or solve_timed_out)


def split_evaluations(max_evaluations: int | None, starts: int) -> list[int | None]:
    """The evaluation budget of each start: ``max_evaluations`` split as evenly as integers allow."""
    if max_evaluations is None:
        return [None] * starts
    return [max_evaluations // starts + (k < max_evaluations % starts) for k in range(starts)]


def optimize(network: Network, template: ArchTemplate, goal: Goal, *, starts: int = 4, jobs: int = 2,
             seed: int = 0, solver: str = "cyipopt", fixed_hardware: bool = False, time_limit_s: float = 60.0,
             backend: str = "loky", scheduler: str | None = None,
             on_start_done: Callable[[StartResult], None] | None = None, model_hooks: tuple = (),
             max_evaluations: int | None = None) -> OptimizeResult:
    """Best design over ``starts`` parallel starts; a stop request or KeyboardInterrupt keeps the best so far.

    ``time_limit_s`` is the whole run's budget: with ``jobs`` workers, each start gets
    ``time_limit_s * min(jobs, starts) / starts``, and no start runs past ``time_limit_s`` from now.
    ``max_evaluations`` is split evenly over the starts (:func:`split_evaluations`); each start's result
    then depends only on ``seed`` and its index, so the result is the same for any ``jobs``, machine or
    load, as long as the time limit does not cut first (the status then says ``time_limit``).
    Status: ``converged`` when every start's local search ended on its own, ``evaluation_limit`` when
    the evaluation budget ended one, ``time_limit`` when one was cut short, ``interrupted`` on Ctrl-C or
    a stop request, ``infeasible`` when no start found a feasible design (:mod:`search.outcome`); never
    ``optimal`` (nothing here proves optimality).
    """
    t0 = time.monotonic()
    deadline = time.time() + time_limit_s
    done: list[StartResult] = []
    status = OptimizeStatus.CONVERGED
    per_start = time_limit_s * min(max(jobs, 1), starts) / starts
    budgets = split_evaluations(max_evaluations, starts)
    args = [(network, template, goal, seed, k, solver, fixed_hardware, per_start, None, tuple(model_hooks), deadline,
             budgets[k], stop_file()) for k in range(starts)]
    try:
        for res in _run_parallel(args, jobs, backend, scheduler):
            done.append(res)
            if on_start_done is not None:
                on_start_done(res)
    except KeyboardInterrupt:
        status = OptimizeStatus.INTERRUPTED
    if stop_requested():
        status = OptimizeStatus.INTERRUPTED
    feasible = [r for r in done if r.best is not None and r.best.score.feasible]
    best = min(feasible, key=lambda r: (r.best.score.value(goal.objective), r.start)).best if feasible else None
    if status is OptimizeStatus.CONVERGED and any(r.timed_out for r in done):
        status = OptimizeStatus.TIME_LIMIT
    elif best is None and status is OptimizeStatus.CONVERGED:
        status = OptimizeStatus.INFEASIBLE
    elif status is OptimizeStatus.CONVERGED and max_evaluations is not None and \
            sum(r.evaluations for r in done) >= max_evaluations:
        status = OptimizeStatus.EVALUATION_LIMIT
    binding = tuple(r.message for r in done if r.best is None and r.message and r.solver_status != "not_started")
    return OptimizeResult(status, "nlp+local-search", best, tuple(sorted(done, key=lambda r: r.start)),
                          time.monotonic() - t0, sum(r.evaluations for r in done), binding[:1])


def _call_start(a: tuple) -> StartResult:
    *positional, deadline, budget, stop_path = a
    return run_start(*positional, deadline_epoch_s=deadline, max_evaluations=budget, stop_path=stop_path)


def _run_parallel(args: list[tuple], jobs: int, backend: str, scheduler: str | None):
    """Yield start results in start order as they finish."""
    if jobs <= 1 or len(args) == 1:
        for a in args:
            yield _call_start(a)
        return
    if backend == "dask":
        from dask.distributed import Client

        client = Client(scheduler) if scheduler else Client(processes=True, n_workers=jobs, threads_per_worker=1)
        try:
            futures = client.map(_call_start, args, pure=False)
            for future in futures:
                yield future.result()
        finally:
            client.close()
        return
    if backend != "loky":
        raise SpecError(f"--backend = {backend!r}: use loky or dask")

    parallel = loky_parallel(jobs, return_as="generator")
    yield from parallel(delayed(_call_start)(a) for a in args)
