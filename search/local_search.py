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
The search stops at the end of its kicks, or at its round or time budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.specs.types import Architecture, Layer, Network
from formulation.technology import architecture_area_mm2
from formulation.specs.template import ArchTemplate, Hardware
from formulation.model.validation import mapping_violations
from search.design import Design, Evaluated, Goal, evaluate_design, objective_values, totals_score
from search.rounding import fits_template, repair
from search.tiling import prime_factors, smooth_numbers


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


@dataclass
class SearchStats:
    evaluations: int = 0
    rounds: int = 0
    improvements: int = 0
    timed_out: bool = False  # the time budget, not convergence, ended the search


def _network_objective(energy: np.ndarray, cycles: np.ndarray, counts: np.ndarray, arch: Architecture,
                       area: float, goal: Goal) -> float:
    return totals_score(energy, cycles, counts, arch, area, goal).value(goal.objective)


def _scored_neighbours(layer: Layer, arch: Architecture, mapping: MappingArrays, i: int, counts: np.ndarray,
                       energy: np.ndarray, cycles: np.ndarray, area: float, goal: Goal, stats: SearchStats):
    """The legal neighbours of layer ``i``'s mapping, their evaluation and the network objective of each
    (the other layers as in ``energy``/``cycles``); None when no neighbour is legal."""
    nbrs = layer_neighbours(arch, mapping)
    legal = ~mapping_violations(layer, arch, nbrs)
    if not legal.any():
        return None
    nbrs = nbrs.take(np.flatnonzero(legal))
    ev = evaluate_batch(layer, arch, nbrs)
    stats.evaluations += nbrs.size
    total_e = counts @ energy + counts[i] * (ev.energy_pJ - energy[i])
    total_t = (counts @ cycles + counts[i] * (ev.cycles - cycles[i])) / (arch.clock_GHz * 1e9)
    return nbrs, ev, objective_values(total_e, total_t, area, goal)


def _working_copy(network: Network, template: ArchTemplate, current: Evaluated):
    """The fixed hardware, its architecture and area, the repeat counts, and mutable per-layer state."""
    hw = current.design.hardware
    arch = template.instantiate(hw)
    counts = np.array([e.count for e in network.layers], dtype=float)
    return (hw, arch, architecture_area_mm2(arch), counts, list(current.design.mappings),
            current.layer_energy_pJ.copy(), current.layer_cycles.copy())


def improve_layers(network: Network, template: ArchTemplate, current: Evaluated, goal: Goal, stats: SearchStats,
                   deadline: float, max_rounds: int = 50) -> Evaluated:
    """Best-improvement descent over every layer's mapping with the hardware fixed."""
    hw, arch, area, counts, mappings, energy, cycles = _working_copy(network, template, current)
    best_value = _network_objective(energy, cycles, counts, arch, area, goal)
    for _ in range(max_rounds):
        stats.rounds += 1
        improved = False
        for i, entry in enumerate(network.layers):
            if time.monotonic() > deadline:
                stats.timed_out = True
                break
            step = _scored_neighbours(entry.layer, arch, mappings[i], i, counts, energy, cycles, area, goal, stats)
            if step is None:
                continue
            nbrs, ev, values = step
            j = int(np.argmin(values))
            if values[j] < best_value * (1 - 1e-9):
                best_value = values[j]
                mappings[i] = nbrs.take(slice(j, j + 1))
                energy[i], cycles[i] = ev.energy_pJ[j], ev.cycles[j]
                stats.improvements += 1
                improved = True
        if not improved or time.monotonic() > deadline:
            break
    design = Design(hw, tuple(mappings))
    score = totals_score(energy, cycles, counts, arch, area, goal)
    return Evaluated(design, score, energy, cycles)


def kick_layers(network: Network, template: ArchTemplate, current: Evaluated, goal: Goal, stats: SearchStats,
                deadline: float, rng: np.random.Generator, kicks_per_layer: int = 8, depth: int = 3) -> Evaluated:
    """Iterated local search with the hardware fixed: ``kicks_per_layer`` kicks per layer, round robin.

    A kick replaces one layer's mapping by the end of a ``depth``-step random walk over legal
    neighbours, descends on that layer alone and is kept only if the network objective is then
    lower than before the kick. Descent alone stalls where two or three moves are needed at once
    (a loop that moves to a level where its order position and the bypass there are wrong); the
    kicks get over such steps. A final :func:`improve_layers` re-optimizes every layer.
    """
    hw, arch, area, counts, mappings, energy, cycles = _working_copy(network, template, current)
    best_value = _network_objective(energy, cycles, counts, arch, area, goal)
    if not math.isfinite(best_value):
        return current
    accepted = False
    n = len(network.layers)
    for k in range(kicks_per_layer * n):
        if time.monotonic() > deadline:
            stats.timed_out = True
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
        stats.evaluations += 1
        e_try, c_try = energy.copy(), cycles.copy()
        e_try[i], c_try[i] = ev.energy_pJ[0], ev.cycles[0]
        value = _network_objective(e_try, c_try, counts, arch, area, goal)
        while time.monotonic() <= deadline:
            step = _scored_neighbours(layer, arch, mapping, i, counts, e_try, c_try, area, goal, stats)
            if step is None:
                break
            nbrs, ev, values = step
            j = int(np.argmin(values))
            if not values[j] < value * (1 - 1e-9):
                break
            value = values[j]
            mapping = nbrs.take(slice(j, j + 1))
            e_try[i], c_try[i] = ev.energy_pJ[j], ev.cycles[j]
        if value < best_value * (1 - 1e-9):
            best_value = value
            mappings[i] = mapping
            energy, cycles = e_try, c_try
            stats.improvements += 1
            accepted = True
    score = totals_score(energy, cycles, counts, arch, area, goal)
    result = Evaluated(Design(hw, tuple(mappings)), score, energy, cycles)
    if accepted:
        result = improve_layers(network, template, result, goal, stats, deadline)
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
                 seed: int | tuple[int, ...] = 0) -> tuple[Evaluated, SearchStats]:
    """Alternate layer descent and hardware steps until neither improves, then kick the layers
    (:func:`kick_layers`, random walks drawn from ``numpy.random.default_rng(seed)``); stops early
    at the time budget."""
    deadline = time.monotonic() + time_limit_s
    rng = np.random.default_rng(seed)
    stats = SearchStats()
    current = evaluate_design(network, template, start, goal)
    stats.evaluations += len(network.layers)
    current = improve_layers(network, template, current, goal, stats, deadline)
    for _ in range(0 if fixed_hardware else max_hardware_steps):
        if time.monotonic() > deadline:
            stats.timed_out = True
            break
        best = current
        for hw in hardware_neighbours(template, current.design.hardware):
            candidate = evaluate_design(network, template, repaired_design(network, template, current.design, hw), goal)
            stats.evaluations += len(network.layers)
            candidate = improve_layers(network, template, candidate, goal, stats, deadline, max_rounds=3)
            if candidate.score.value(goal.objective) < best.score.value(goal.objective) * (1 - 1e-9):
                best = candidate
        if best is current:
            break
        current = improve_layers(network, template, best, goal, stats, deadline)
    if kicks_per_layer > 0:
        current = kick_layers(network, template, current, goal, stats, deadline, rng, kicks_per_layer)
    return current, stats
