"""Local search over discrete designs, scored in batches by the exact model.

A layer's neighbourhood (:func:`layer_neighbours`) is every mapping one move away: move one
prime factor of a dimension between slots (temporal at any level, spatial X/Y at a fanout),
exchange two primes of different dimensions between two slots (one goes each way, so a tile can
trade one dimension for another without overflowing), swap two adjacent loops of a level's
order, or toggle a bypass the hardware allows. All neighbours of a layer are generated as one
batch, filtered for legality and evaluated together; the best one that lowers the network
objective (with the other layers fixed) is taken. Hardware moves (:func:`hardware_neighbours`)
step the mesh sides and halve or double a buffer; every layer's mapping is then repaired
(:func:`search.rounding.repair`) and re-improved. When no move improves, :func:`kick_layers`
perturbs one layer at a time by a short random walk and descends again (iterated local search,
seeded, so a seed gives the same result), keeping a kick only when the network objective drops.
The search stops at the end of its kicks, or when its :class:`~search.outcome.Budget` (wall time,
evaluations) is used up. What it minimizes is pluggable: a score object (:class:`GoalScore`, the
goal's objective, by default; the weighted-sum baseline passes a weighted scalarization of power
and latency) gives the vectorized score of candidate network totals, the score of a design, and
what counts as an improvement.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.specs.types import Architecture, Layer, Network
from formulation.technology import architecture_area_mm2
from formulation.specs.template import ArchTemplate, Hardware
from formulation.model.validation import mapping_violations
from formulation.goals import seconds
from search.design import Design, Evaluated, Goal, evaluate_design, objective_values, totals_score
from search.outcome import Budget
from search.rounding import fits_template, repair
from search.tiling import prime_factors, smooth_numbers

#: A step must lower the score by more than this share of it to count as an improvement.
IMPROVE_REL_TOL = 1e-9


def _stack(rows: list[tuple[np.ndarray, ...]]) -> MappingArrays:
    return MappingArrays(*(np.stack([r[i] for r in rows]) for i in range(5)))


def layer_neighbours(arch: Architecture, arrays: MappingArrays, exchanges: bool = True) -> MappingArrays:
    """Every mapping one move away from ``arrays`` (a batch of one); legality is checked by the caller.

    Moves: one prime of a dimension to another slot; with ``exchanges``, also a prime of dimension
    ``d`` from slot ``a`` to ``b`` together with a prime of another dimension from ``b`` to ``a``;
    a swap of two adjacent loops of one level; one bypass toggled (never at the outermost level,
    never for a tensor the level cannot hold).
    """
    temporal, sx, sy, order, keep = (a[0] for a in (arrays.temporal, arrays.spatial_x, arrays.spatial_y,
                                                    arrays.order, arrays.keep))
    levels = len(arch.levels)
    rows = []
    slots = [("t", l) for l in range(levels)]
    for l in range(levels):
        fan_x, fan_y = arch.fanout(l)
        if fan_x > 1:
            slots.append(("x", l))
        if fan_y > 1:
            slots.append(("y", l))
    tables = {"t": temporal, "x": sx, "y": sy}
    moves = []  # (dim, prime, from slot, to slot)
    for d in range(N_DIMS):
        for src in slots:
            value = int(tables[src[0]][src[1], d])
            if value == 1:
                continue
            for p in sorted(set(prime_factors(value))):
                moves.extend((d, p, src, dst) for dst in slots if dst != src)

    def moved(*steps):
        t2, x2, y2 = temporal.copy(), sx.copy(), sy.copy()
        new = {"t": t2, "x": x2, "y": y2}
        for d, p, (k1, l1), (k2, l2) in steps:
            new[k1][l1, d] //= p
            new[k2][l2, d] *= p
        return t2, x2, y2, order, keep

    for move in moves:
        rows.append(moved(move))
    if exchanges:
        for i, a in enumerate(moves):
            for b in moves[i + 1:]:
                if a[0] != b[0] and a[2] == b[3] and a[3] == b[2]:
                    rows.append(moved(a, b))
    for l in range(levels):
        for k in range(N_DIMS - 1):
            o2 = order.copy()
            o2[l, k], o2[l, k + 1] = o2[l, k + 1], o2[l, k]
            rows.append((temporal, sx, sy, o2, keep))
    for l in range(1, levels):
        for t in range(N_TENSORS):
            if t in arch.levels[l].keeps:
                k2 = keep.copy()
                k2[l, t] = not k2[l, t]
                rows.append((temporal, sx, sy, order, k2))
    return _stack(rows)


class GoalScore:
    """Scoring by the goal's objective: +inf where the area budget or a cap is broken.

    A step is taken only when it lowers the objective by more than :data:`IMPROVE_REL_TOL` of its
    value (objectives are positive), so the search cannot cycle on rounding noise.
    """

    def __init__(self, goal: Goal):
        self.goal = goal

    def values(self, energy_pJ: np.ndarray, latency_s: np.ndarray, area_mm2: float) -> np.ndarray:
        """The score of candidate network totals (vectorized)."""
        return objective_values(energy_pJ, latency_s, area_mm2, self.goal)

    def of(self, evaluated: Evaluated) -> float:
        """The score of a whole evaluated design."""
        return evaluated.score.value(self.goal.objective)

    def improves(self, new: float, old: float) -> bool:
        return new < old * (1 - IMPROVE_REL_TOL)

    def total(self, energy: np.ndarray, cycles: np.ndarray, counts: np.ndarray, arch: Architecture,
              area: float) -> float:
        """The score of per-layer energies and cycles with repeat ``counts`` on ``arch``."""
        return float(self.values(counts @ energy, seconds(counts @ cycles, arch.clock_GHz), area))


def _scored_neighbours(layer: Layer, arch: Architecture, mapping: MappingArrays, i: int, counts: np.ndarray,
                       energy: np.ndarray, cycles: np.ndarray, area: float, score: GoalScore, budget: Budget):
    """The legal neighbours of layer ``i``'s mapping (cut to the remaining evaluations), their evaluation and
    the score of each (the other layers as in ``energy``/``cycles``); None when no neighbour is legal."""
    nbrs = layer_neighbours(arch, mapping)
    legal = np.flatnonzero(~mapping_violations(layer, arch, nbrs))
    remaining = budget.remaining_evaluations()
    if remaining < len(legal):
        legal = legal[:max(0, int(remaining))]
    if not len(legal):
        return None
    nbrs = nbrs.take(legal)
    ev = evaluate_batch(layer, arch, nbrs)
    budget.charge(nbrs.size)
    total_e = counts @ energy + counts[i] * (ev.energy_pJ - energy[i])
    total_t = seconds(counts @ cycles + counts[i] * (ev.cycles - cycles[i]), arch.clock_GHz)
    return nbrs, ev, score.values(total_e, total_t, area)


def _working_copy(network: Network, template: ArchTemplate, current: Evaluated):
    """The fixed hardware, its architecture and area, the repeat counts, and mutable per-layer state."""
    hw = current.design.hardware
    arch = template.instantiate(hw)
    counts = np.array([e.count for e in network.layers], dtype=float)
    return (hw, arch, architecture_area_mm2(arch), counts, list(current.design.mappings),
            current.layer_energy_pJ.copy(), current.layer_cycles.copy())


def improve_layers(network: Network, template: ArchTemplate, current: Evaluated, score: GoalScore, budget: Budget,
                   max_rounds: int = 50) -> Evaluated:
    """Best-improvement descent over every layer's mapping under ``score``, with the hardware fixed."""
    hw, arch, area, counts, mappings, energy, cycles = _working_copy(network, template, current)
    best_value = score.total(energy, cycles, counts, arch, area)
    for _ in range(max_rounds):
        improved = False
        for i, entry in enumerate(network.layers):
            if budget.exhausted():
                break
            step = _scored_neighbours(entry.layer, arch, mappings[i], i, counts, energy, cycles, area, score, budget)
            if step is None:
                continue
            nbrs, ev, values = step
            j = int(np.argmin(values))
            if score.improves(values[j], best_value):
                best_value = values[j]
                mappings[i] = nbrs.take(slice(j, j + 1))
                energy[i], cycles[i] = ev.energy_pJ[j], ev.cycles[j]
                improved = True
        if not improved or budget.exhausted():
            break
    design = Design(hw, tuple(mappings))
    return Evaluated(design, totals_score(energy, cycles, counts, arch, area, score.goal), energy, cycles)


def kick_layers(network: Network, template: ArchTemplate, current: Evaluated, score: GoalScore, budget: Budget,
                rng: np.random.Generator, kicks_per_layer: int = 8, depth: int = 3) -> Evaluated:
    """Iterated local search with the hardware fixed: ``kicks_per_layer`` kicks per layer, round robin.

    A kick replaces one layer's mapping by the end of a ``depth``-step random walk over legal
    neighbours, descends on that layer alone and is kept only if the score is then lower than
    before the kick. Descent alone stalls where two or three moves are needed at once (a loop
    that moves to a level where its order position and the bypass there are wrong); the kicks get
    over such steps. A final :func:`improve_layers` re-optimizes every layer.
    """
    hw, arch, area, counts, mappings, energy, cycles = _working_copy(network, template, current)
    best_value = score.total(energy, cycles, counts, arch, area)
    if not math.isfinite(best_value):
        return current
    accepted = False
    n = len(network.layers)
    for k in range(kicks_per_layer * n):
        if budget.exhausted():
            break
        i = k % n
        layer = network.layers[i].layer
        mapping = mappings[i]
        for _ in range(depth):
            nbrs = layer_neighbours(arch, mapping, exchanges=False)
            legal = np.flatnonzero(~mapping_violations(layer, arch, nbrs))
            if not len(legal):
                break
            mapping = nbrs.take(legal[rng.integers(len(legal))][None])
        ev = evaluate_batch(layer, arch, mapping)
        budget.charge(1)
        e_try, c_try = energy.copy(), cycles.copy()
        e_try[i], c_try[i] = ev.energy_pJ[0], ev.cycles[0]
        value = score.total(e_try, c_try, counts, arch, area)
        while not budget.exhausted():
            step = _scored_neighbours(layer, arch, mapping, i, counts, e_try, c_try, area, score, budget)
            if step is None:
                break
            nbrs, ev, values = step
            j = int(np.argmin(values))
            if not score.improves(values[j], value):
                break
            value = values[j]
            mapping = nbrs.take(slice(j, j + 1))
            e_try[i], c_try[i] = ev.energy_pJ[j], ev.cycles[j]
        if score.improves(value, best_value):
            best_value = value
            mappings[i] = mapping
            energy, cycles = e_try, c_try
            accepted = True
    result = Evaluated(Design(hw, tuple(mappings)), totals_score(energy, cycles, counts, arch, area, score.goal),
                       energy, cycles)
    if accepted:
        result = improve_layers(network, template, result, score, budget)
    return result


def _smooth_steps(n: int, lo: int, hi: int) -> set[int]:
    """The neighbouring 2-3-7-smooth mesh sides of ``n`` (next and previous), and ``2n``, ``n/2``."""
    smooth = smooth_numbers(lo, hi)
    below = [m for m in smooth if m < n]
    above = [m for m in smooth if m > n]
    return {*(below[-1:]), *(above[:1]), n * 2, n // 2}


def hardware_neighbours(template: ArchTemplate, hw: Hardware) -> list[Hardware]:
    """Mesh sides to the next smooth value (or x2, /2) and each variable buffer doubled or halved, inside the template."""
    out = []
    for mx in _smooth_steps(hw.mesh_x, *template.mesh_x_range):
        out.append(replace(hw, mesh_x=mx))
    for my in _smooth_steps(hw.mesh_y, *template.mesh_y_range):
        out.append(replace(hw, mesh_y=my))
    sizes = dict(hw.sizes_words)
    for name in sizes:
        for factor in (0.5, 2.0):
            new = dict(sizes)
            new[name] = int(sizes[name] * factor)
            out.append(replace(hw, sizes_words=tuple(new.items())))
    return [h for h in out if h.mesh_x >= 1 and h.mesh_y >= 1 and fits_template(template, h) and h != hw]


def repaired_design(network: Network, template: ArchTemplate, design: Design, hw: Hardware) -> Design:
    arch = template.instantiate(hw)
    return Design(hw, tuple(repair(entry.layer, arch, m) for entry, m in zip(network.layers, design.mappings)))


def local_search(network: Network, template: ArchTemplate, start: Design, goal: Goal, fixed_hardware: bool = False,
                 time_limit_s: float = math.inf, max_hardware_steps: int = 20, kicks_per_layer: int = 8,
                 seed: int | tuple[int, ...] = 0, *, score: GoalScore | None = None,
                 budget: Budget | None = None) -> tuple[Evaluated, Budget]:
    """Alternate layer descent and hardware steps until neither improves, then kick the layers
    (:func:`kick_layers`, random walks drawn from ``numpy.random.default_rng(seed)``).

    ``score`` (default :class:`GoalScore` of ``goal``) says what is minimized and what counts as an
    improvement; ``budget`` (default: ``time_limit_s`` of wall time) counts the evaluations and
    stops the search early (between layers, and before each hardware neighbour, which needs one
    evaluation per layer). Returns the final design and the budget (evaluations used, ``stopped_by``).
    """
    score = GoalScore(goal) if score is None else score
    budget = Budget(time_limit_s) if budget is None else budget
    rng = np.random.default_rng(seed)
    n_layers = len(network.layers)
    current = evaluate_design(network, template, start, goal)
    budget.charge(n_layers)
    current = improve_layers(network, template, current, score, budget)
    for _ in range(0 if fixed_hardware else max_hardware_steps):
        if budget.exhausted():
            break
        best, best_value = current, score.of(current)
        for hw in hardware_neighbours(template, current.design.hardware):
            if budget.remaining_evaluations() < n_layers:
                budget.stop(Budget.EVALUATIONS)
                break
            if budget.exhausted():
                break
            candidate = evaluate_design(network, template, repaired_design(network, template, current.design, hw), goal)
            budget.charge(n_layers)
            candidate = improve_layers(network, template, candidate, score, budget, max_rounds=3)
            value = score.of(candidate)
            if score.improves(value, best_value):
                best, best_value = candidate, value
        if best is current:
            break
        current = improve_layers(network, template, best, score, budget)
    if kicks_per_layer > 0:
        current = kick_layers(network, template, current, score, budget, rng, kicks_per_layer)
    return current, budget
