"""Genetic algorithms on the shared genotype: pymoo's GA for one objective, NSGA-II for power vs latency.

Both run pymoo (ask and tell) on the integer genome of :class:`~search.baselines.space.DesignSpace`:

* **Sampling**: random genomes, hardware drawn within the area budget when possible.
* **Repair**: :meth:`~search.baselines.space.DesignSpace.legalize` maps every genome onto the
  genome of a legal design (spatial factors fit the mesh, tiles fit the buffers), so every
  individual the model sees is a legal design.
* **Crossover**: uniform (pymoo's ``UX``), gene by gene.
* **Mutation** (:class:`GeneMutation`): each gene mutates with probability ``2 / n_var``; a
  hardware gene steps up or down its legal grid (by a geometric number of steps), any other gene
  (prime slot, loop order, keep bit) is redrawn uniformly.
* **Objectives**: the goal's objective, as a natural log (GA), or ``(ln power, ln latency)``
  (NSGA-II), from the exact model (:class:`~search.baselines.evaluation.Evaluator`).
* **Constraints**: the area budget and the goal's caps are pymoo inequality constraints ``G <= 0``
  (log ratios, :func:`~search.baselines.evaluation.constraint_matrix`), so pymoo ranks infeasible
  designs after feasible ones and among themselves by their violation. Designs whose hardware is
  over the area budget are not sent to the model (objective set to a large constant).

Budget: generations run until ``max_evaluations`` mapping evaluations are used (checked after
each generation, so the last generation may overshoot by at most one population's evaluations;
``evaluations`` reports the true count), ``time_limit_s`` has passed (also checked between
generations) or ``max_generations``. With an evaluation or generation budget the result depends
only on ``seed`` (``jobs`` only spreads each generation's model batches over processes); a
wall-time budget may stop after a different generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.ux import UX
from pymoo.problems.static import StaticProblem

from formulation.specs.types import Network
from formulation.specs.template import ArchTemplate
from search.baselines.evaluation import Evaluator, Progress, Scores, Tracker, constraint_matrix, n_constraints
from search.baselines.space import PENALTY_F, DesignSpace, ParetoArchive
from formulation.goals import power_mW
from search.design import Goal, objective_values
from search.optimize import OptimizeResult

METHOD = "ga"
METHOD_PARETO = "nsga2"


class GenomeSampling(Sampling):
    def __init__(self, space: DesignSpace, goal: Goal):
        super().__init__()
        self.space = space
        self.goal = goal

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return self.space.sample(n_samples, random_state, self.goal)


class GenomeRepair(Repair):
    """The repair operator: genomes onto the genomes of legal designs."""

    def __init__(self, space: DesignSpace):
        super().__init__()
        self.space = space

    def _do(self, problem, X, **kwargs):
        return self.space.legalize(X)


class GeneMutation(Mutation):
    """Per gene with probability ``prob_var``: hardware genes step along their grid, the others are redrawn."""

    def __init__(self, space: DesignSpace, prob_var: float | None = None):
        super().__init__(prob=1.0, prob_var=prob_var if prob_var is not None else min(0.5, 2.0 / space.n_var))
        self.space = space

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        space = self.space
        X = np.rint(X).astype(np.int64)
        b, n = X.shape
        p = np.asarray(self.get_prob_var(problem, size=b), dtype=float).reshape(-1)
        mask = random_state.random((b, n)) < p[:, None]
        redraw = random_state.integers(space.xl, space.xu + 1, size=(b, n))
        steps = random_state.geometric(0.5, size=(b, n)) * random_state.choice([-1, 1], size=(b, n))
        new = np.where(space.ordinal[None, :], np.clip(X + steps, space.xl, space.xu), redraw)
        return np.where(mask, new, X)


def _problem(space: DesignSpace, goal: Goal, n_obj: int) -> Problem:
    return Problem(n_var=space.n_var, n_obj=n_obj, n_ieq_constr=n_constraints(goal), xl=space.xl, xu=space.xu,
                   vtype=int)


def _objectives(scores: Scores, goal: Goal, pareto: bool) -> np.ndarray:
    """pymoo objectives: ln of the goal's objective (caps ignored: they are constraints), or ln power, ln latency."""
    ok = scores.evaluated
    e = np.where(ok, scores.energy_pJ, 1.0)
    t = np.where(ok, scores.latency_s, 1.0)
    if pareto:
        f = np.stack([np.log(power_mW(e, t)), np.log(t)], axis=1)
    else:
        f = np.log(objective_values(e, t, 0.0, Goal(goal.objective)))[:, None]
    return np.where(ok[:, None], f, PENALTY_F)


def _run(network: Network, template: ArchTemplate, goal: Goal, *, seed: int, time_limit_s: float,
         max_evaluations: int | None, fixed_hardware: bool, jobs: int, on_progress, pop_size: int,
         max_generations: int | None, pareto: bool) -> OptimizeResult:
    method = METHOD_PARETO if pareto else METHOD
    space = DesignSpace(network, template, fixed_hardware)
    tracker = Tracker(method, goal, time_limit_s, max_evaluations, on_progress)
    early = tracker.infeasible_area(space)
    if early is not None:
        return early
    problem = _problem(space, goal, 2 if pareto else 1)
    operators = dict(pop_size=pop_size, sampling=GenomeSampling(space, goal), crossover=UX(),
                     mutation=GeneMutation(space), repair=GenomeRepair(space), eliminate_duplicates=True)
    algorithm = NSGA2(**operators) if pareto else GA(**operators)
    algorithm.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    archive = ParetoArchive()
    generation = 0
    initial_best = math.inf
    interrupted = False
    with Evaluator(space, goal, jobs) as evaluator:
        try:
            while not tracker.exhausted(evaluator.evaluations):
                if max_generations is not None and generation >= max_generations:
                    tracker.stopped_by = "generations"
                    break
                pop = algorithm.ask()
                if pop is None or len(pop) == 0:  # no new offspring: the population has converged
                    tracker.stopped_by = "converged"
                    break
                scores = evaluator.evaluate(np.rint(pop.get("X")).astype(np.int64))
                out = {"F": _objectives(scores, goal, pareto)}
                if problem.n_ieq_constr:
                    out["G"] = constraint_matrix(scores, goal)
                PymooEvaluator().eval(StaticProblem(problem, **out), pop)
                algorithm.tell(infills=pop)
                j = int(np.argmin(scores.values))
                tracker.offer(scores.values[j], lambda: evaluator.evaluated(scores, j))
                if pareto:
                    feasible = np.isfinite(scores.values)
                    points = np.where(feasible[:, None], np.stack([scores.power_mW, scores.latency_s], axis=1),
                                      np.inf)
                    archive.add(points, lambda k: evaluator.evaluated(scores, k))
                if generation == 0:
                    initial_best = tracker.best_value
                generation += 1
                tracker.record(evaluator.evaluations, f"generation {generation}")
        except KeyboardInterrupt:
            interrupted = True
    extra = {"generations": generation, "initial_best": initial_best, "pop_size": pop_size}
    if pareto:
        extra["front"] = archive.front()
        extra["front_objectives"] = ("power_mW", "latency_s")
        tracker.best = archive.best(goal)  # same value as the best seen: the objectives grow with power and latency
    return tracker.result(evaluator.evaluations, interrupted, extra=extra)


def run_ga(network: Network, template: ArchTemplate, goal: Goal, *, seed: int, time_limit_s: float,
           max_evaluations: int | None = None, fixed_hardware: bool = False, jobs: int = 1,
           on_progress: Callable[[Progress], None] | None = None, pop_size: int = 40,
           max_generations: int | None = None) -> OptimizeResult:
    """Single-objective GA on the goal's objective (see the module docstring).

    ``extra``: ``history`` (best feasible objective so far after every generation), ``generations``,
    ``initial_best`` (best feasible objective of the initial population), ``stopped_by``.
    """
    return _run(network, template, goal, seed=seed, time_limit_s=time_limit_s, max_evaluations=max_evaluations,
                fixed_hardware=fixed_hardware, jobs=jobs, on_progress=on_progress, pop_size=pop_size,
                max_generations=max_generations, pareto=False)


def run_ga_pareto(network: Network, template: ArchTemplate, goal: Goal, *, seed: int, time_limit_s: float,
                  max_evaluations: int | None = None, fixed_hardware: bool = False, jobs: int = 1,
                  on_progress: Callable[[Progress], None] | None = None, pop_size: int = 40,
                  max_generations: int | None = None) -> OptimizeResult:
    """NSGA-II on (power, latency) under the goal's area budget and caps (see the module docstring).

    ``extra["front"]``: the non-dominated feasible designs among all designs evaluated (an
    archive kept across generations, so no front point is lost), fastest first. ``best`` is the
    front design with the best goal objective, and ``extra["history"]`` traces that objective
    over all evaluated designs (every supported objective grows with power and latency, so the
    two agree).
    """
    return _run(network, template, goal, seed=seed, time_limit_s=time_limit_s, max_evaluations=max_evaluations,
                fixed_hardware=fixed_hardware, jobs=jobs, on_progress=on_progress, pop_size=pop_size,
                max_generations=max_generations, pareto=True)


__all__ = ["GeneMutation", "GenomeRepair", "GenomeSampling", "run_ga", "run_ga_pareto"]
