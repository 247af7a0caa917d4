"""Local search over discrete designs, scored in batches by the exact model.

A layer's neighbourhood (:func:`layer_neighbours`) is every mapping one move away: move one
prime factor of a dimension between slots (temporal at any level, spatial X/Y at a fanout),
swap two adjacent loops of a level's order, or toggle a bypass the hardware allows. All
neighbours of a layer are generated as one batch, filtered for legality and evaluated together;
the best one that lowers the network objective (with the other layers fixed) is taken. Hardware
moves (:func:`hardware_neighbours`) step the mesh sides and halve or double a buffer; every
layer's mapping is then repaired (:func:`search.rounding.repair`) and re-improved. The search
stops when no move improves, or at its round, evaluation or time budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS
from formulation.encoding import MappingArrays
from formulation.model import evaluate_batch
from formulation.specs import Architecture, Layer, Network
from formulation.technology import architecture_area_mm2
from formulation.template import ArchTemplate, Hardware
from formulation.validation import mapping_violations
from search.design import Design, Evaluated, Goal, evaluate_design, objective_values, totals_score
from search.rounding import fits_template, repair
from search.sampling import prime_factors


def _stack(rows: list[tuple[np.ndarray, ...]]) -> MappingArrays:
    return MappingArrays(*(np.stack([r[i] for r in rows]) for i in range(5)))


def layer_neighbours(arch: Architecture, arrays: MappingArrays) -> MappingArrays:
    """Every mapping one move away from ``arrays`` (a batch of one); legality is checked by the caller."""
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
    for d in range(N_DIMS):
        for kind, l in slots:
            tables = {"t": temporal, "x": sx, "y": sy}
            value = int(tables[kind][l, d])
            if value == 1:
                continue
            for p in sorted(set(prime_factors(value))):
                for kind2, l2 in slots:
                    if (kind2, l2) == (kind, l):
                        continue
                    t2, x2, y2 = temporal.copy(), sx.copy(), sy.copy()
                    new = {"t": t2, "x": x2, "y": y2}
                    new[kind][l, d] //= p
                    new[kind2][l2, d] *= p
                    rows.append((t2, x2, y2, order, keep))
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


def improve_layers(network: Network, template: ArchTemplate, current: Evaluated, goal: Goal, stats: SearchStats,
                   deadline: float, max_rounds: int = 50) -> Evaluated:
    """Best-improvement descent over every layer's mapping with the hardware fixed."""
    hw = current.design.hardware
    arch = template.instantiate(hw)
    area = architecture_area_mm2(arch)
    counts = np.array([e.count for e in network.layers], dtype=float)
    mappings = list(current.design.mappings)
    energy = current.layer_energy_pJ.copy()
    cycles = current.layer_cycles.copy()
    best_value = _network_objective(energy, cycles, counts, arch, area, goal)
    for _ in range(max_rounds):
        stats.rounds += 1
        improved = False
        for i, entry in enumerate(network.layers):
            if time.monotonic() > deadline:
                stats.timed_out = True
                break
            nbrs = layer_neighbours(arch, mappings[i])
            legal = ~mapping_violations(entry.layer, arch, nbrs)
            if not legal.any():
                continue
            nbrs = nbrs.take(np.flatnonzero(legal))
            ev = evaluate_batch(entry.layer, arch, nbrs)
            stats.evaluations += nbrs.size
            total_e = counts @ energy + counts[i] * (ev.energy_pJ - energy[i])
            total_t = (counts @ cycles + counts[i] * (ev.cycles - cycles[i])) / (arch.clock_GHz * 1e9)
            values = objective_values(total_e, total_t, area, goal)
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


def _smooth_steps(n: int, lo: int, hi: int) -> set[int]:
    """The neighbouring 2-3-7-smooth mesh sides of ``n`` (next and previous), and ``2n``, ``n/2``."""
    smooth = [m for m in range(max(1, lo), hi + 1) if set(prime_factors(m)) <= {2, 3, 7}]
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
                 time_limit_s: float = math.inf, max_hardware_steps: int = 20) -> tuple[Evaluated, SearchStats]:
    """Alternate layer descent and hardware steps until neither improves (or the budget ends)."""
    deadline = time.monotonic() + time_limit_s
    stats = SearchStats()
    current = evaluate_design(network, template, start, goal)
    stats.evaluations += len(network.layers)
    current = improve_layers(network, template, current, goal, stats, deadline)
    if fixed_hardware:
        return current, stats
    for _ in range(max_hardware_steps):
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
    return current, stats


def layer_of(network: Network, name: str) -> Layer:
    for entry in network.layers:
        if entry.layer.name == name:
            return entry.layer
    raise KeyError(name)
