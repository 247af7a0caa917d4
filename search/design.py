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
from formulation.goals import Caps, Objective
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
        return self.energy_pJ / self.latency_s * 1e-9

    @property
    def edp(self) -> float:
        return self.energy_pJ * self.latency_s

    def value(self, objective: Objective) -> float:
        """The objective, or +inf for an infeasible design (so any feasible design beats it)."""
        if not self.feasible:
            return math.inf
        return {Objective.ENERGY: self.energy_pJ, Objective.LATENCY: self.latency_s, Objective.EDP: self.edp,
                Objective.POWER: self.power_mW}[objective]


def objective_values(energy_pJ: np.ndarray, latency_s: np.ndarray, area_mm2: float, goal: Goal) -> np.ndarray:
    """Vectorized :meth:`Score.value`: the objective per candidate, +inf where a budget or cap is broken."""
    power = energy_pJ / latency_s * 1e-9
    value = {Objective.ENERGY: energy_pJ, Objective.LATENCY: latency_s, Objective.EDP: energy_pJ * latency_s,
             Objective.POWER: power}[goal.objective].astype(float)
    bad = np.zeros(value.shape, dtype=bool)
    if goal.area_budget_mm2 is not None and area_mm2 > goal.area_budget_mm2 * (1 + 1e-9):
        bad |= True
    for cap, quantity in ((goal.caps.latency_s, latency_s), (goal.caps.energy_pJ, energy_pJ),
                          (goal.caps.power_mW, power)):
        if cap is not None:
            bad |= quantity > cap * (1 + 1e-9)
    return np.where(bad, np.inf, value)


def totals_score(energy: np.ndarray, cycles: np.ndarray, counts: np.ndarray, arch: Architecture, area: float,
                 goal: Goal, valid: bool = True) -> Score:
    """Network score from per-layer energies and cycles."""
    e = float(np.dot(counts, energy))
    t = float(np.dot(counts, cycles)) / (arch.clock_GHz * 1e9)
    feasible = valid and (goal.area_budget_mm2 is None or area <= goal.area_budget_mm2 * (1 + 1e-9))
    caps = goal.caps
    if caps.latency_s is not None and t > caps.latency_s * (1 + 1e-9):
        feasible = False
    if caps.energy_pJ is not None and e > caps.energy_pJ * (1 + 1e-9):
        feasible = False
    if caps.power_mW is not None and e / t * 1e-9 > caps.power_mW * (1 + 1e-9):
        feasible = False
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
