"""Random search: random legal designs of the shared genotype, evaluated in batches; keep the best.

Every round draws ``hardware_per_round`` hardware points uniformly from the template's legal grid
(redrawing points over the area budget, whose designs could not be feasible: no model evaluation
is spent on them) and ``designs_per_hardware`` random genomes on each. Every gene of a genome is
uniform over its values; the genomes are made legal by the repair operator
(:meth:`~search.baselines.space.DesignSpace.legalize`) and scored by the exact model, one batch per
(hardware, layer). A design is a joint sample: hardware plus one random mapping per layer.

Budget: the run stops when ``max_evaluations`` mapping evaluations are used (the last round is
shrunk so as not to exceed it) or after ``time_limit_s`` (checked between rounds). With an
evaluation budget the result depends only on ``seed`` (not on ``jobs``, which only spreads each
round's model batches over processes); a wall-time budget may cut after a different round.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from formulation.specs.types import Network
from formulation.specs.template import ArchTemplate
from search.baselines.evaluation import Evaluator, Progress, Tracker
from search.baselines.space import DesignSpace
from search.design import Goal
from search.optimize import OptimizeResult

METHOD = "random"


def run_random_search(network: Network, template: ArchTemplate, goal: Goal, *, seed: int, time_limit_s: float,
                      max_evaluations: int | None = None, fixed_hardware: bool = False, jobs: int = 1,
                      on_progress: Callable[[Progress], None] | None = None, designs_per_hardware: int = 16,
                      hardware_per_round: int = 4) -> OptimizeResult:
    """Best of random legal designs within the budget (see the module docstring).

    ``extra["values"]`` holds the goal objective of every sampled design in draw order (+inf for
    infeasible ones), so ``best`` is the design of their minimum; ``extra["history"]`` is the
    best-so-far trace ``[(wall_s, evaluations, best objective)]``, one entry per round.
    """
    space = DesignSpace(network, template, fixed_hardware)
    tracker = Tracker(METHOD, goal, time_limit_s, max_evaluations, on_progress)
    early = tracker.infeasible_area(space)
    if early is not None:
        return early
    rng = np.random.default_rng(seed)
    n_layers = len(network.layers)
    values: list[np.ndarray] = []
    interrupted = False
    with Evaluator(space, goal, jobs) as evaluator:
        try:
            while not tracker.exhausted(evaluator.evaluations):
                n = hardware_per_round * designs_per_hardware
                remaining = tracker.remaining_evaluations(evaluator.evaluations)
                if math.isfinite(remaining):
                    n = min(n, int(remaining) // n_layers)
                if n <= 0:
                    tracker.stopped_by = "evaluations"
                    break
                hardware = space.sample_hardware(-(-n // designs_per_hardware), rng, goal)
                genes = space.sample(n, rng, hardware=np.repeat(hardware, designs_per_hardware, axis=0)[:n])
                scores = evaluator.evaluate(space.legalize(genes))
                values.append(scores.values)
                j = int(np.argmin(scores.values))
                tracker.offer(scores.values[j], lambda: evaluator.evaluated(scores, j))
                tracker.record(evaluator.evaluations, f"{sum(len(v) for v in values)} designs")
        except KeyboardInterrupt:
            interrupted = True
    all_values = np.concatenate(values) if values else np.zeros(0)
    return tracker.result(evaluator.evaluations, interrupted, extra={"values": all_values,
                                                                     "designs": len(all_values)})


__all__ = ["run_random_search"]
