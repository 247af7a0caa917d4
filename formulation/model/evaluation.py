"""The result type of the exact model, shared by the NumPy reference and the compiled kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchEvaluation:
    """Results for ``B`` mappings on ``L`` storage levels; counts are totals over all instances.

    Arrays indexed ``[b, l, t]`` use :class:`~formulation.axes.Tensor` for ``t``; a tensor a level
    bypasses has zero counts and capacity there.
    """

    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    utilized_instances: np.ndarray   # [b, l]
    utilized_capacity: np.ndarray    # tile words per instance, [b, l, t]
    partition_size: np.ndarray       # distinct words per instance over the run, [b, l, t]
    capacity_used: np.ndarray        # sum of kept tiles, [b, l]
    fits: np.ndarray                 # every bounded level holds its tiles, [b]
    energy_pJ_by_tensor: np.ndarray  # [b, l, t]
    mac_energy_pJ: np.ndarray        # [b]
    energy_pJ: np.ndarray            # [b]
    compute_cycles: np.ndarray       # [b]
    level_cycles: np.ndarray         # [b, l]
    throttling: np.ndarray           # [b, l]
    cycles: np.ndarray               # [b]
    macs: int
    mac_instances: int

    @property
    def utilization(self) -> np.ndarray:
        return self.macs / (self.cycles * self.mac_instances)

    @property
    def energy_pJ_by_level(self) -> np.ndarray:
        return self.energy_pJ_by_tensor.sum(axis=2)
