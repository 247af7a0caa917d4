"""A discrete design point (hardware + one mapping per layer) and its network-level score.

Everything here uses the exact model (:func:`formulation.model.exact.evaluate_batch`); the network
totals are ``E = sum_i n_i E_i`` (pJ) and ``T = sum_i n_i cycles_i / f_clk`` (s) over the layers
``i`` with repeat counts ``n_i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.goals import CAP_REL_TOL, Caps, Objective, objective_value, power_mW, seconds
from formulation.specs.types import Architecture, Network
from formulation.technology import architecture_area_mm2
from formulation.specs.template import ArchTemplate, Hardware
from formulation.model.validation import mapping_violations


@dataclass(frozen=True)
class Goal:
    """What a search minimizes, under which budget and caps."""

    objective: Objective = Objective.EDP
    area_budget_mm2: float | None = None
    caps: Caps = field(default_factory=Caps)


@dataclass(frozen=True)
class Score:
    energy_pJ: float
    latency_s: float
    area_mm2: float
    feasible: bool

    @property
    def power_mW(self) -> float:
        return power_mW(self.energy_pJ, self.latency_s)

    @property
    def edp(self) -> float:
        return self.energy_pJ * self.latency_s

    def value(self, objective: Objective) -> float:
        """The objective, or +inf for an infeasible design (so any feasible design beats it)."""
        if not self.feasible:
            return math.inf
        return objective_value(objective, self.energy_pJ, self.latency_s)


def exceeds(value, cap: float | None):
    """``value > cap`` beyond :data:`~formulation.goals.CAP_REL_TOL` (never without a cap; works on arrays)."""
    return False if cap is None else value > cap * (1 + CAP_REL_TOL)


def objective_values(energy_pJ: np.ndarray, latency_s: np.ndarray, area_mm2: float, goal: Goal) -> np.ndarray:
    """Vectorized :meth:`Score.value`: the objective per candidate, +inf where a budget or cap is broken."""
    value = np.asarray(objective_value(goal.objective, energy_pJ, latency_s), dtype=float)
    bad = np.zeros(value.shape, dtype=bool) | exceeds(area_mm2, goal.area_budget_mm2)
    for cap, quantity in ((goal.caps.latency_s, latency_s), (goal.caps.energy_pJ, energy_pJ),
                          (goal.caps.power_mW, power_mW(energy_pJ, latency_s))):
        bad = bad | exceeds(quantity, cap)
    return np.where(bad, np.inf, value)


def totals_score(energy: np.ndarray, cycles: np.ndarray, counts: np.ndarray, arch: Architecture, area: float,
                 goal: Goal, valid: bool = True) -> Score:
    """Network score from per-layer energies and cycles."""
    e = float(np.dot(counts, energy))
    t = float(seconds(float(np.dot(counts, cycles)), arch.clock_GHz))
    caps = goal.caps
    feasible = bool(valid and not exceeds(area, goal.area_budget_mm2) and not exceeds(t, caps.latency_s)
                    and not exceeds(e, caps.energy_pJ) and not exceeds(power_mW(e, t), caps.power_mW))
    return Score(e, t, area, feasible)


@dataclass(frozen=True)
class Design:
    """Hardware and one mapping (a batch-of-one :class:`MappingArrays`) per layer of the network."""

    hardware: Hardware
    mappings: tuple[MappingArrays, ...]


@dataclass(frozen=True)
class Evaluated:
    design: Design
    score: Score
    layer_energy_pJ: np.ndarray
    layer_cycles: np.ndarray


def evaluate_design(network: Network, template: ArchTemplate, design: Design, goal: Goal) -> Evaluated:
    arch = template.instantiate(design.hardware)
    energies, cycles = [], []
    valid = True
    for entry, arrays in zip(network.layers, design.mappings):
        valid &= not bool(mapping_violations(entry.layer, arch, arrays).any())
        ev = evaluate_batch(entry.layer, arch, arrays)
        energies.append(float(ev.energy_pJ[0]))
        cycles.append(float(ev.cycles[0]))
    counts = np.array([entry.count for entry in network.layers], dtype=float)
    energy, cyc = np.array(energies), np.array(cycles)
    score = totals_score(energy, cyc, counts, arch, architecture_area_mm2(arch), goal, valid)
    return Evaluated(design, score, energy, cyc)
