"""Bayesian optimization over the hardware genes; each hardware point's mappings come from a cheap inner step.

**What the GP sees.** The design space is the shared genome of :mod:`search.baselines.space`
(decode, legalize = repair, the exact-model :class:`~search.baselines.evaluation.Evaluator` and its
evaluation count, :class:`~search.baselines.evaluation.Tracker`). A whole-network genome is large and
mostly categorical (ResNet-18 on the ``simple`` template: 354 genes, 350 of them mapping genes),
which a GP cannot model. So BO runs over the hardware genes only (mesh_x, mesh_y and one size
per variable buffer: 4 ordinal genes for ``simple``, 6 for ``eyeriss-like``), each encoded as its
log value scaled to [0, 1], and the function it models is ``f(h) = -ln(best network objective
the inner step finds on hardware h)``.

**Inner step** (per hardware point ``h``, at most ``(samples + refine_rounds * (mutants + 1))``
mapping evaluations per layer, 50 with the defaults):

1. ``samples_per_hardware`` (16) random genomes with the hardware genes set to ``h``; the first
   carries the incumbent's mapping genes (best design so far), which ``legalize`` repairs onto
   ``h``, so what was learned about mappings moves from one hardware point to the next;
2. :func:`assemble`: with the hardware fixed, layers are independent, so each layer takes the
   row whose mapping minimizes the *network* objective (coordinate descent, the other layers
   fixed). Every slice was evaluated, so the assembled genome costs no model evaluation;
3. ``refine_rounds`` (2) rounds of ``mutants_per_round`` (16) mutants of the assembled genome
   (1-2 mapping genes redrawn in every layer), legalized, evaluated and assembled again.

**Outer loop.** ``n_init`` (default ``2 d + 1``, ``d`` = number of hardware genes with more than
one value) hardware points uniform over the legal grid within the area budget; then per
iteration one new point: a BoTorch ``SingleTaskGP`` (Matern-5/2 with ARD, inferred noise,
standardized outcome, hyperparameters by marginal likelihood) on all points so far (a point
infeasible under the caps gets the worst feasible value minus 1), and the analytic
``LogExpectedImprovement`` maximized *exactly over a finite set of lattice points*: 2048 uniform
grid rows, 512 geometric steps around the 4 best points and every +-1/+-2 step of the best one,
less the points already evaluated and those over the area budget (area is a closed form of the
hardware genes, :func:`hardware_areas`, so no evaluation is spent on over-budget hardware and
there is no continuous relaxation to round). When no candidate is left, or with
``fixed_hardware`` (one hardware point; no GP and no BoTorch needed), iterations refine the
incumbent's mappings with the same inner step.

**Budget, determinism.** Every batch is shrunk to fit ``max_evaluations`` (new evaluations <=
rows x layers), so the run never exceeds it; ``time_limit_s`` is checked between steps. NumPy
draws come from ``default_rng(seed)`` and the GP fit runs on one thread under a per-iteration
torch seed, so with an evaluation budget the same seed gives the same result.
``extra``: ``history`` (best-so-far ``[(wall_s, evaluations, best objective)]`` after every
hardware point), ``initial_best`` (best after the initial design), ``hardware_points``,
``iterations``, ``n_init``, ``stopped_by``.

**Library choice: BoTorch** (0.18.1, gpytorch 1.15.2, torch 2.13.0+cpu), against optuna 5.0 on
the same problems, budgets and seeds (``simple`` template, EDP, area budget 2 mm2):

* Outer optimizer alone, in a first harness with its own hardware grid (2-3-7-smooth mesh
  sides) and inner step (64 random mappings per layer + 2 rounds of
  :func:`search.local_search.improve_layers`, seeded per hardware point, so ``f`` is a fixed
  function), 40 hardware points, seeds 0-4, five ResNet-18 layers; median best EDP (pJ s):
  BoTorch GP-LogEI 1.01e7, optuna GPSampler 1.23e7, optuna TPE (multivariate) 1.27e7, TPE
  (independent) 1.51e7, random 2.12e7.
* In this module (proposer swapped, everything else equal; "random" = uniform over the same
  candidate set), median / mean best EDP:

  - whole ResNet-18, seeds 0-9: at 10,000 mapping evaluations BoTorch 1.68e7 / 1.82e7, TPE
    2.29e7 / 2.41e7, random 2.89e7 / 3.02e7; at 20,000 (~44 hardware points) BoTorch
    1.25e7 / 1.39e7, TPE 1.49e7 / 1.52e7, random 2.05e7 / 2.16e7. BoTorch was better than TPE
    on 7 of the 10 seeds at both budgets;
  - five ResNet-18 layers, seeds 0-4: at 4,000 evaluations BoTorch 1.09e7, TPE 1.84e7, random
    1.94e7 (medians); at 8,000 BoTorch 8.95e6 / 8.79e6, TPE 8.45e6 / 8.94e6, random
    1.49e7 / 1.44e7;
  - five MobileNetV2 layers (1 mm2), seeds 0-4, 8,000 evaluations: the three tie (medians
    6.91e4-7.00e4); there the mappings matter more than the hardware.

* Cost: the GP fit and the acquisition take 0.1-0.45 s per iteration (10 s of a 27 s
  whole-ResNet-18 run of 20,000 evaluations, 36 iterations); importing torch ~2 s.

TPE is lighter but was not as good per evaluation, so BoTorch it is. It stays an optional
dependency (extra ``bo``: ``torch==2.13.0``, ``botorch``); :func:`run_bo` raises a one-line
:class:`~formulation.specs.types.SpecError` when it is missing and the hardware is not fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from formulation.specs.types import Network, SpecError
from formulation.technology import mac_area_mm2, storage_area_mm2
from formulation.specs.template import ArchTemplate
from search.baselines.evaluation import Evaluator, Progress, Scores, Tracker
from search.baselines.space import DesignSpace
from formulation.goals import seconds
from search.design import Goal, exceeds, objective_values
from search.optimize import OptimizeResult

METHOD = "bo"


# ---- hardware points: features and area ---------------------------------------------------------------

def hardware_values(space: DesignSpace) -> list[np.ndarray]:
    """The legal values of every hardware gene: mesh_x, mesh_y, then the variable buffer sizes."""
    return [space.mesh_x_values, space.mesh_y_values, *space.size_values]


def hardware_features(space: DesignSpace, rows: np.ndarray) -> np.ndarray:
    """Hardware gene rows ``[n, n_hw]`` as points of the unit cube: log value, scaled to [0, 1] per gene.

    Genes with a single legal value are left out (they carry no information).
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, space.n_hw)
    cols = []
    for j, values in enumerate(hardware_values(space)):
        if len(values) < 2:
            continue
        lo, hi = math.log(values[0]), math.log(values[-1])
        cols.append((np.log(values[rows[:, j]]) - lo) / (hi - lo))
    return np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0))


def hardware_areas(space: DesignSpace, rows: np.ndarray) -> np.ndarray:
    """On-chip area (mm2) of hardware gene rows, vectorized (what ``architecture_area_mm2`` gives per row).

    The template's per-PE levels and the MACs have one instance per PE; every other level has one.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, space.n_hw)
    template = space.template
    base = template.base
    pes = (space.mesh_x_values[rows[:, 0]] * space.mesh_y_values[rows[:, 1]]).astype(float)
    area = pes * mac_area_mm2(base.mac.word_bits)
    sizes = {name: values[rows[:, 2 + j]].astype(float)
             for j, (name, values) in enumerate(zip(space.size_names, space.size_values))}
    for index, level in enumerate(base.levels):
        if level.size_words is None:
            continue
        size = sizes.get(level.name, float(level.size_words))
        per_instance = storage_area_mm2(size, level.word_bits, level.technology.value)
        area = area + per_instance * (pes if index in template.array_levels else 1.0)
    return area


# ---- the inner step: mappings for one hardware point ------------------------------------------------------

def assemble(space: DesignSpace, scores: Scores, goal: Goal, start: int | None = None, passes: int = 2) -> np.ndarray:
    """One genome on the (shared) hardware of ``scores``: per layer, the row whose mapping is best for the network.

    Layers map independently once the hardware is fixed, so layer ``i`` may take its genes from
    any evaluated row. Coordinate descent on the network objective: start from the best row (or
    ``start``), then ``passes`` sweeps that give each layer the row minimizing the objective with
    the other layers fixed. Every layer slice of the result was evaluated, so scoring it costs no
    model evaluation (the evaluator's cache).
    """
    e, c = scores.layer_energy_pJ, scores.layer_cycles
    pick = np.full(len(space.layers), int(np.argmin(scores.values)) if start is None else start)
    clock_GHz = space.template.base.clock_GHz
    counts = space.counts
    rows = np.arange(len(e))
    for _ in range(passes):
        changed = False
        for i in range(len(space.layers)):
            ce, cc = e[pick, np.arange(len(pick))], c[pick, np.arange(len(pick))]
            total_e = counts @ ce + counts[i] * (e[:, i] - ce[i])
            total_t = seconds(counts @ cc + counts[i] * (c[:, i] - cc[i]), clock_GHz)
            values = objective_values(total_e, total_t, 0.0, goal)
            j = int(rows[np.argmin(values)])
            if values[j] < values[pick[i]] * (1 - 1e-12):
                pick[i], changed = j, True
        if not changed:
            break
    genome = scores.genes[pick[0]].copy()
    for i, lg in enumerate(space.layers):
        genome[lg.start:lg.stop] = scores.genes[pick[i], lg.start:lg.stop]
    return genome


def mutate_mappings(space: DesignSpace, genome: np.ndarray, n: int, rng: np.random.Generator,
                    genes_per_layer: int = 2) -> np.ndarray:
    """``n`` copies of ``genome`` with, in every layer, 1 to ``genes_per_layer`` mapping genes redrawn.

    Hardware genes are kept. Since :func:`assemble` picks layers independently, each mutant row is
    one neighbour for every layer at once.
    """
    out = np.repeat(np.asarray(genome, dtype=np.int64)[None], n, axis=0)
    for lg in space.layers:
        width = lg.stop - lg.start
        if width == 0:
            continue
        k = rng.integers(1, genes_per_layer + 1, size=n)
        for r in range(n):
            cols = lg.start + rng.choice(width, size=min(int(k[r]), width), replace=False)
            out[r, cols] = rng.integers(space.xl[cols], space.xu[cols] + 1)
    return out


# ---- the surrogate: a GP with log expected improvement, on a finite candidate set ---------------------

class GPProposer:
    """BoTorch ``SingleTaskGP`` (Matern-5/2, ARD, inferred noise) + analytic ``LogExpectedImprovement``."""

    def __init__(self, seed: int):
        import torch

        self.torch = torch
        self.seed = seed

    def propose(self, x: np.ndarray, y: np.ndarray, candidates: np.ndarray, iteration: int) -> int:
        """Index of the candidate (unit-cube features) with the highest LogEI; ``y`` is maximized."""
        torch = self.torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # matrices of a few dozen rows: threads only add overhead
        try:
            return self._propose(x, y, candidates, iteration)
        finally:
            torch.set_num_threads(threads)

    def _propose(self, x: np.ndarray, y: np.ndarray, candidates: np.ndarray, iteration: int) -> int:
        torch = self.torch
        from botorch.acquisition.analytic import LogExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        with torch.random.fork_rng():
            torch.manual_seed(self.seed * 100_003 + iteration)
            tx = torch.tensor(x, dtype=torch.double)
            ty = torch.tensor(y, dtype=torch.double).unsqueeze(-1)
            model = SingleTaskGP(tx, ty, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            acq = LogExpectedImprovement(model, best_f=ty.max())
            tc = torch.tensor(candidates, dtype=torch.double).unsqueeze(1)
            with torch.no_grad():
                values = torch.cat([acq(tc[i:i + 4096]) for i in range(0, len(tc), 4096)])
        return int(torch.argmax(values))


def _make_proposer(seed: int):
    return GPProposer(seed)


def require_botorch() -> None:
    """A one-line :class:`SpecError` when the optional BoTorch stack is missing."""
    try:
        import botorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise SpecError(f"method bo = {exc.name!r} missing: BoTorch is optional; install it with "
                        f".venv/bin/pip install -e '.[bo]'") from None


# ---- candidates -------------------------------------------------------------------------------------------

def candidate_rows(space: DesignSpace, goal: Goal, rng: np.random.Generator, evaluated: np.ndarray,
                   best: np.ndarray, n_global: int = 2048, n_local: int = 512) -> np.ndarray:
    """Unevaluated hardware rows within the area budget: uniform draws plus steps around the best rows."""
    hi = space.xu[:space.n_hw]
    parts = [rng.integers(0, hi + 1, size=(n_global, space.n_hw))]
    if len(best):
        base = best[rng.integers(len(best), size=n_local)]
        move = rng.random((n_local, space.n_hw)) < 0.5
        steps = rng.geometric(0.5, size=(n_local, space.n_hw)) * rng.choice([-1, 1], size=(n_local, space.n_hw))
        parts.append(np.clip(base + np.where(move, steps, 0), 0, hi))
        for j in range(space.n_hw):  # every single-gene step of the best row
            for s in (-2, -1, 1, 2):
                row = best[0].copy()
                row[j] = np.clip(row[j] + s, 0, hi[j])
                parts.append(row[None])
    rows = np.unique(np.concatenate(parts), axis=0)
    if goal.area_budget_mm2 is not None:
        rows = rows[~exceeds(hardware_areas(space, rows), goal.area_budget_mm2)]
    if len(evaluated):
        seen = {r.tobytes() for r in np.asarray(evaluated, dtype=np.int64)}
        rows = rows[np.array([r.tobytes() not in seen for r in rows], dtype=bool)] if len(rows) else rows
    return rows


# ---- the run ----------------------------------------------------------------------------------------------

def _next_hardware(space: DesignSpace, goal: Goal, rng: np.random.Generator, hw_rows: list[np.ndarray],
                   hw_values: list[float], proposer, seed: int, iteration: int):
    """The next hardware point (None when no candidate is left) and the proposer (made on first use).

    The GP sees ``-ln(value)`` of every evaluated point (an infeasible one gets the worst feasible
    value minus 1); with fewer than two feasible points the candidate is drawn uniformly.
    """
    order = np.argsort(hw_values, kind="stable")
    best_rows = np.array([hw_rows[k] for k in order[:4]], dtype=np.int64)
    cands = candidate_rows(space, goal, rng, np.array(hw_rows), best_rows)
    if not len(cands):
        return None, proposer
    values = np.array(hw_values)
    feasible = np.isfinite(values)
    if feasible.sum() >= 2:
        y = np.where(feasible, -np.log(np.where(feasible, values, 1.0)), 0.0)
        y[~feasible] = y[feasible].min() - 1.0
        proposer = proposer or _make_proposer(seed)
        k = proposer.propose(hardware_features(space, np.array(hw_rows)), y, hardware_features(space, cands),
                             iteration)
    else:
        k = int(rng.integers(len(cands)))
    return cands[k], proposer


def run_bo(network: Network, template: ArchTemplate, goal: Goal, *, seed: int, time_limit_s: float,
           max_evaluations: int | None = None, fixed_hardware: bool = False, jobs: int = 1,
           on_progress: Callable[[Progress], None] | None = None, n_init: int | None = None,
           samples_per_hardware: int = 16, refine_rounds: int = 2, mutants_per_round: int = 16) -> OptimizeResult:
    """Bayesian optimization over the hardware genes; mappings filled in by an inner step (see the module docstring).

    About 100 lines: the initial design, the outer loop and the inner step (a closure) share the
    incumbent, the GP's data and the budget; split further, that state would be passed around by hand.
    """
    space = DesignSpace(network, template, fixed_hardware)
    tracker = Tracker(METHOD, goal, time_limit_s, max_evaluations, on_progress)
    early = tracker.infeasible_area(space)
    if early is not None:
        return early
    n_features = hardware_features(space, np.zeros((1, space.n_hw), dtype=np.int64)).shape[1]
    if n_features:
        require_botorch()
    rng = np.random.default_rng(seed)
    n_layers = len(network.layers)
    n_init = n_init if n_init is not None else max(4, 2 * n_features + 1)
    hw_rows: list[np.ndarray] = []   # evaluated hardware points
    hw_values: list[float] = []      # best objective found on each
    incumbent: np.ndarray | None = None  # genome of the best design so far (what the inner step starts from)
    incumbent_value = math.inf
    initial_best = math.inf
    proposer = None
    interrupted = False
    iteration = 0

    def room() -> int:
        """Rows of one batch that fit in the remaining evaluation budget (new evaluations <= rows x layers)."""
        remaining = tracker.remaining_evaluations(evaluator.evaluations)
        return int(remaining) // n_layers if math.isfinite(remaining) else 1 << 30

    def inner(hw: np.ndarray, start: np.ndarray | None) -> tuple[float, np.ndarray | None]:
        """Best genome on hardware ``hw``: random mappings (+ ``start``'s), assembled per layer, then refined."""
        n = min(samples_per_hardware, room())
        if n <= 0:
            return math.inf, None
        genes = space.sample(n, rng, hardware=hw)
        if start is not None:
            genes[0, space.n_hw:] = start[space.n_hw:]  # the incumbent's mappings, repaired onto this hardware
        scores = evaluator.evaluate(space.legalize(genes))
        genome = assemble(space, scores, goal)
        for _ in range(refine_rounds):
            n = min(mutants_per_round, room())
            if n <= 0 or tracker.out_of_time():
                break
            mutants = space.legalize(mutate_mappings(space, genome, n, rng))
            scores = evaluator.evaluate(np.concatenate([genome[None], mutants]))
            genome = assemble(space, scores, goal, start=0)
        final = evaluator.evaluate(genome[None])  # cached: no new model evaluation
        value = float(final.values[0])
        tracker.offer(value, lambda: evaluator.evaluated(final, 0))
        return value, genome

    with Evaluator(space, goal, jobs) as evaluator:
        try:
            # Initial design: uniform over the legal hardware grid, within the area budget.
            init = space.sample_hardware(n_init, rng, goal)
            init = np.unique(init, axis=0)
            for hw in init:
                if tracker.exhausted(evaluator.evaluations):
                    break
                value, genome = inner(hw, incumbent)
                if genome is None:
                    break
                hw_rows.append(hw), hw_values.append(value)
                if incumbent is None or value < incumbent_value:
                    incumbent, incumbent_value = genome, value
                tracker.record(evaluator.evaluations, f"initial hardware {len(hw_rows)}")
            initial_best = tracker.best_value
            while not tracker.exhausted(evaluator.evaluations):
                iteration += 1
                hw = None
                if n_features:
                    hw, proposer = _next_hardware(space, goal, rng, hw_rows, hw_values, proposer, seed, iteration)
                if hw is None:  # a single hardware point, or every candidate seen: refine the incumbent
                    if incumbent is None:
                        break
                    value, genome = inner(incumbent[:space.n_hw], incumbent)
                    if genome is None:
                        break
                    if value < incumbent_value:
                        incumbent, incumbent_value = genome, value
                    tracker.record(evaluator.evaluations, f"refine {iteration}")
                    continue
                value, genome = inner(hw, incumbent)
                if genome is None:
                    break
                hw_rows.append(hw), hw_values.append(value)
                if value < incumbent_value:
                    incumbent, incumbent_value = genome, value
                tracker.record(evaluator.evaluations, f"hardware {len(hw_rows)}")
            if tracker.stopped_by is None and room() <= 0:
                tracker.stopped_by = "evaluations"
        except KeyboardInterrupt:
            interrupted = True
    extra = {"initial_best": initial_best, "hardware_points": len(hw_rows), "iterations": iteration,
             "n_init": n_init}
    return tracker.result(evaluator.evaluations, interrupted, extra=extra)


__all__ = ["run_bo"]
