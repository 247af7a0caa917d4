"""The objective of the exact mapper from energy and cycles (one formula for the bounds and the search)."""

from __future__ import annotations

import numpy as np

from formulation.goals import Objective
from formulation.goals import seconds as latency_s


def objective_of(objective: Objective, energy_pJ, cycles, clock_GHz: float):
    """The objective from energy (pJ) and cycles: energy, latency (s) or EDP (pJ s)."""
    seconds = latency_s(np.asarray(cycles, dtype=np.float64), clock_GHz)
    if objective is Objective.ENERGY:
        return np.asarray(energy_pJ, dtype=np.float64)
    if objective is Objective.LATENCY:
        return seconds
    if objective is Objective.EDP:
        return np.asarray(energy_pJ, dtype=np.float64) * seconds
    raise ValueError(f"objective = {objective.value!r}: the exact mapper minimizes energy, latency or edp")


__all__ = ["objective_of"]
