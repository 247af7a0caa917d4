"""``--keep-activations``: choose the outermost on-chip buffer's size with activation residency priced in.

The search proper scores layers one by one (Timeloop's view). With residency
(:mod:`formulation.model.residency`) a larger outermost on-chip level ``L1`` can hold more outputs
between layers and save their DRAM round trips, at the price of a larger area and a higher energy
per ``L1`` access. :func:`keep_activations` makes that trade for a found design: it keeps the PE
mesh and every mapping (they stay legal: only ``L1`` grows), tries every power-of-two multiple of
the design's ``L1`` size up to the template's maximum (and the maximum itself), re-evaluates every
layer exactly at each size, subtracts the residency saving from the network energy, and keeps the
size with the best objective within the area budget and caps (the found size itself when nothing
beats it). Deterministic; ``len(sizes) x layers`` exact evaluations. :func:`best_with_residency`
does this for every candidate design (the best design of every start) and keeps the best, so the
choice between starts also prices residency in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from formulation.model.exact import evaluate_batch
from formulation.model.report import evaluation_record
from formulation.model.residency import Residency, activation_residency
from formulation.model.validation import mapping_violations
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network
from formulation.technology import architecture_area_mm2
from search.design import Evaluated, Goal, totals_score


@dataclass(frozen=True)
class ResidencyChoice:
    """The chosen design (score with the saving subtracted), its residency, and every size tried."""

    best: Evaluated
    residency: Residency
    energy_pJ_without: float
    tried: tuple[dict, ...]

    def document(self) -> dict:
        return {**self.residency.document(), "energy_pJ_per_layer_sum": self.energy_pJ_without,
                "energy_pJ_with_residency": self.best.score.energy_pJ, "sizes_tried": list(self.tried)}


def _candidate_sizes(template: ArchTemplate, level: str, current: int) -> list[int]:
    high = dict((name, hi) for name, _, hi in template.size_ranges).get(level, current)
    sizes, s = [], current
    while s <= high:
        sizes.append(s)
        s *= 2
    if sizes[-1] != high:
        sizes.append(high)
    return sizes


def _at_size(network: Network, template: ArchTemplate, best: Evaluated, goal: Goal, level: str, size: int):
    hw = best.design.hardware
    sizes = tuple((name, size if name == level else s) for name, s in hw.sizes_words)
    hardware = replace(hw, sizes_words=sizes)
    arch = template.instantiate(hardware)
    records, energies, cycles, valid = {}, [], [], True
    for entry, arrays in zip(network.layers, best.design.mappings):
        valid &= not bool(mapping_violations(entry.layer, arch, arrays).any())
        ev = evaluate_batch(entry.layer, arch, arrays)
        records[entry.layer.name] = evaluation_record(ev, arch)
        energies.append(float(ev.energy_pJ[0]))
        cycles.append(float(ev.cycles[0]))
    counts = np.array([e.count for e in network.layers], dtype=float)
    residency = activation_residency(network, arch, records)
    plain = float(np.dot(counts, energies))
    total_cycles = float(np.dot(counts, cycles))
    area = architecture_area_mm2(arch)
    score = totals_score(np.array([plain - residency.dram_energy_saved_pJ]), np.array([total_cycles]),
                         np.array([1.0]), arch, area, goal, valid)
    design = replace(best.design, hardware=hardware)
    return Evaluated(design, score, np.array(energies), np.array(cycles)), residency, plain


def keep_activations(network: Network, template: ArchTemplate, best: Evaluated, goal: Goal) -> ResidencyChoice | None:
    """Re-size ``L1`` for the design ``best`` with residency priced in (module docstring); None without an ``L1``."""
    base = template.base
    if len(base.levels) < 2 or base.levels[1].name not in dict(best.design.hardware.sizes_words):
        return None
    level = base.levels[1].name
    current = best.design.hardware.size_of(level)
    choice, tried = None, []
    for size in _candidate_sizes(template, level, current):
        evaluated, residency, plain = _at_size(network, template, best, goal, level, size)
        value = evaluated.score.value(goal.objective)
        tried.append({"size_words": size, "objective": value if np.isfinite(value) else None,
                      "area_mm2": evaluated.score.area_mm2, "dram_energy_saved_pJ": residency.dram_energy_saved_pJ,
                      "kept": len(residency.kept)})
        if choice is None or value < choice[0].score.value(goal.objective):
            choice = (evaluated, residency, plain)
    return ResidencyChoice(choice[0], choice[1], choice[2], tuple(tried))


def best_with_residency(network: Network, template: ArchTemplate, candidates: list[Evaluated],
                        goal: Goal) -> ResidencyChoice | None:
    """:func:`keep_activations` for each candidate; the one with the best objective (first on ties)."""
    best = None
    for candidate in candidates:
        choice = keep_activations(network, template, candidate, goal)
        if choice is not None and (best is None or choice.best.score.value(goal.objective)
                                   < best.best.score.value(goal.objective)):
            best = choice
    return best
