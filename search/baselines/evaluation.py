"""Scoring genomes of the shared genotype with the exact model, and keeping a baseline run's budget and best design.

:class:`Evaluator` scores batches of legal genomes (:class:`~search.baselines.space.DesignSpace`)
with the exact model (:func:`formulation.model.exact.evaluate_batch`): genomes are grouped by
hardware, and each layer's mappings of a group go to the model as one batch. Results are cached per
(hardware, layer, mapping), and designs whose hardware breaks the area budget are not sent to the
model at all (they are infeasible whatever their mappings). ``evaluations`` counts the mappings the
model evaluated. :class:`Tracker` keeps the best feasible design, the best-so-far history
``[(wall_s, evaluations, best objective)]`` and the :class:`~search.outcome.Budget`, and builds the
:class:`~search.outcome.OptimizeResult`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from joblib import delayed

from formulation.goals import CAP_REL_TOL, power_mW, seconds
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.specs.types import Architecture, Layer
from search.baselines.space import DesignSpace
from search.design import Evaluated, Goal, exceeds, objective_values, totals_score
from search.outcome import Budget, OptimizeResult, OptimizeStatus, StartResult
from search.stop import loky_parallel


def _evaluate_task(layer: Layer, arch: Architecture, arrays: MappingArrays) -> tuple[np.ndarray, np.ndarray]:
    ev = evaluate_batch(layer, arch, arrays)
    return ev.energy_pJ.astype(float), ev.cycles.astype(float)


@dataclass(frozen=True)
class Scores:
    """Exact-model results of a batch of legal genomes (rows not sent to the model are NaN, ``evaluated`` False)."""

    genes: np.ndarray
    layer_energy_pJ: np.ndarray  # [B, layers]
    layer_cycles: np.ndarray     # [B, layers]
    energy_pJ: np.ndarray        # [B]
    latency_s: np.ndarray        # [B]
    area_mm2: np.ndarray         # [B]
    evaluated: np.ndarray        # [B] the model ran (hardware within the area budget)
    values: np.ndarray           # [B] goal objective, +inf where infeasible

    @property
    def power_mW(self) -> np.ndarray:
        return power_mW(self.energy_pJ, self.latency_s)


class Evaluator:
    """Scores legal genomes with the exact model, batched per (hardware, layer), cached, counted."""

    def __init__(self, space: DesignSpace, goal: Goal, jobs: int = 1, cache_limit: int = 500_000):
        self.space = space
        self.goal = goal
        self.jobs = jobs
        self.evaluations = 0
        self.cache: dict[tuple, tuple[float, float]] = {}
        self.cache_limit = cache_limit
        self._parallel = None

    def __enter__(self) -> Evaluator:
        if self.jobs > 1:
            self._parallel = loky_parallel(self.jobs)
            self._parallel.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._parallel is not None:
            self._parallel.__exit__(*exc)
            self._parallel = None

    def _run(self, tasks: list[tuple]) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._parallel is not None and len(tasks) > 1:
            return self._parallel(delayed(_evaluate_task)(*t) for t in tasks)
        return [_evaluate_task(*t) for t in tasks]

    def evaluate(self, genes: np.ndarray) -> Scores:
        space, goal = self.space, self.goal
        genes = np.asarray(genes, dtype=np.int64)
        b, n_layers = genes.shape[0], len(space.layers)
        energy = np.full((b, n_layers), np.nan)
        cycles = np.full((b, n_layers), np.nan)
        area = np.zeros(b)
        uniq, group = np.unique(genes[:, :space.n_hw], axis=0, return_inverse=True)
        group = group.ravel()
        archs = [space.arch_and_area(row) for row in uniq]
        for h, (_, a) in enumerate(archs):
            area[group == h] = a
        evaluated = np.array([space.fits_budget(uniq[h], goal) for h in group], dtype=bool) if b else np.zeros(0, bool)
        tasks, slots = [], []
        for h, (arch, _) in enumerate(archs):
            rows = np.flatnonzero((group == h) & evaluated)
            if not len(rows):
                continue
            hw_key = uniq[h].tobytes()
            for i, lg in enumerate(space.layers):
                missing: dict[bytes, list[int]] = {}
                for r in rows:
                    key = (hw_key, i, genes[r, lg.start:lg.stop].tobytes())
                    hit = self.cache.get(key)
                    if hit is None:
                        missing.setdefault(key, []).append(r)
                    else:
                        energy[r, i], cycles[r, i] = hit
                if missing:
                    first = np.array([rs[0] for rs in missing.values()])
                    tasks.append((space.network.layers[i].layer, arch, space.decode_layer(genes[first], i)))
                    slots.append((i, list(missing.items())))
        for (i, missing), (e, c) in zip(slots, self._run(tasks)):
            self.evaluations += len(missing)
            if len(self.cache) > self.cache_limit:
                self.cache.clear()
            for (key, rs), ej, cj in zip(missing, e, c):
                self.cache[key] = (float(ej), float(cj))
                energy[rs, i], cycles[rs, i] = ej, cj
        total_e = energy @ space.counts
        total_t = seconds(cycles @ space.counts, space.template.base.clock_GHz)
        values = np.full(b, np.inf)
        if evaluated.any():
            values[evaluated] = objective_values(total_e[evaluated], total_t[evaluated], 0.0, goal)
        return Scores(genes, energy, cycles, total_e, total_t, area, evaluated, values)

    def evaluated(self, scores: Scores, r: int) -> Evaluated:
        """Row ``r`` of ``scores`` as an :class:`~search.design.Evaluated` (no new model evaluation)."""
        space = self.space
        design = space.decode(scores.genes[r])
        arch = space.arch_and_area(scores.genes[r])[0]
        score = totals_score(scores.layer_energy_pJ[r], scores.layer_cycles[r], space.counts, arch,
                             float(scores.area_mm2[r]), self.goal)
        return Evaluated(design, score, scores.layer_energy_pJ[r].copy(), scores.layer_cycles[r].copy())


def constraint_matrix(scores: Scores, goal: Goal) -> np.ndarray:
    """pymoo inequality constraints ``G <= 0`` as log ratios: area over budget, then each cap."""
    cols = []
    tol = math.log1p(CAP_REL_TOL)
    if goal.area_budget_mm2 is not None:
        cols.append(np.log(scores.area_mm2 / goal.area_budget_mm2) - tol)
    for cap, quantity in ((goal.caps.latency_s, scores.latency_s), (goal.caps.energy_pJ, scores.energy_pJ),
                          (goal.caps.power_mW, scores.power_mW)):
        if cap is not None:
            cols.append(np.where(scores.evaluated, np.log(np.where(scores.evaluated, quantity, 1.0) / cap) - tol, 0.0))
    if not cols:
        return np.zeros((len(scores.values), 0))
    return np.stack(cols, axis=1)


def n_constraints(goal: Goal) -> int:
    return int(goal.area_budget_mm2 is not None) + sum(c is not None for c in
                                                       (goal.caps.latency_s, goal.caps.energy_pJ, goal.caps.power_mW))


# ---- budget, best-so-far and the result ------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """What ``on_progress`` receives after every batch, generation or finished sub-run."""

    method: str
    wall_s: float
    evaluations: int
    best_value: float  # goal objective of the best feasible design so far (inf: none yet)
    message: str = ""


class Tracker:
    """Budget (:class:`~search.outcome.Budget`), best feasible design and best-so-far history of one run."""

    def __init__(self, method: str, goal: Goal, time_limit_s: float, max_evaluations: int | None,
                 on_progress: Callable[[Progress], None] | None = None):
        self.method = method
        self.goal = goal
        self.budget = Budget(time_limit_s, max_evaluations)
        self.on_progress = on_progress
        self.best: Evaluated | None = None
        self.best_value = math.inf
        self.history: list[tuple[float, int, float]] = []

    @property
    def stopped_by(self) -> str | None:
        """Why the run stopped (``None`` while nothing has stopped it)."""
        return self.budget.stopped_by

    @stopped_by.setter
    def stopped_by(self, reason: str) -> None:
        self.budget.stop(reason)

    def elapsed(self) -> float:
        return self.budget.elapsed()

    def out_of_time(self) -> bool:
        return self.budget.out_of_time()

    def remaining_evaluations(self, evaluations: int) -> float:
        return self.budget.max_evaluations - evaluations

    def exhausted(self, evaluations: int) -> bool:
        """True (and remembers why) when the evaluation budget or the wall time is used up."""
        self.budget.evaluations = int(evaluations)
        return self.budget.exhausted()

    def offer(self, value: float, make: Callable[[], Evaluated]) -> bool:
        """Keep the design (built by ``make`` only when needed) if it is feasible and strictly better."""
        if value < self.best_value:
            self.best_value = float(value)
            self.best = make()
            return True
        return False

    def record(self, evaluations: int, message: str = "") -> None:
        wall = self.elapsed()
        self.history.append((wall, int(evaluations), self.best_value))
        if self.on_progress is not None:
            self.on_progress(Progress(self.method, wall, int(evaluations), self.best_value, message))

    def result(self, evaluations: int, interrupted: bool = False, starts: tuple[StartResult, ...] = (),
               binding: tuple[str, ...] = (), extra: dict | None = None) -> OptimizeResult:
        """The run's :class:`OptimizeResult`; its status follows ``stopped_by`` (:mod:`search.outcome`)."""
        if interrupted:
            status = OptimizeStatus.INTERRUPTED
            self.stopped_by = "interrupt"
        elif self.best is None:
            status = OptimizeStatus.INFEASIBLE
        elif self.stopped_by == Budget.TIME:
            status = OptimizeStatus.TIME_LIMIT
        elif self.stopped_by in (Budget.EVALUATIONS, "generations"):
            status = OptimizeStatus.EVALUATION_LIMIT
        else:
            status = OptimizeStatus.CONVERGED
        wall = self.elapsed()
        if not starts:
            starts = (StartResult(0, self.best, None, self.method, int(evaluations), wall),)
        if self.best is None and not binding:
            binding = ("no feasible design found",)
        info = {"history": list(self.history), "stopped_by": self.budget.reason, **(extra or {})}
        return OptimizeResult(status, self.method, self.best, starts, wall, int(evaluations),
                              binding if self.best is None else (), info)

    def infeasible_area(self, space: DesignSpace) -> OptimizeResult | None:
        """An INFEASIBLE result when even the smallest hardware breaks the area budget, else None."""
        budget = self.goal.area_budget_mm2
        smallest = space.min_area_mm2()
        if exceeds(smallest, budget):
            self.stopped_by = "infeasible"
            return self.result(0, binding=(f"area budget {budget:.6g} mm^2 is below the smallest hardware of "
                                           f"template {space.template.name} ({smallest:.6g} mm^2)",))
        return None




__all__ = ["Evaluator", "Progress", "Scores", "Tracker", "constraint_matrix", "n_constraints"]
