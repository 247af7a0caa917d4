"""Polishing a design's mappings with the exact mapper at its hardware (``optimize --polish-time S``).

The co-design's local search moves one or two factors at a time and ends in a local optimum of the
mappings; the exact mapper (:func:`search.mapper.map_layer`) searches a layer's whole mapspace with
proven cuts. Polishing gives every distinct layer of the best design, at that design's hardware, a
share of the budget (the time left divided by the layers left, so what a proven layer does not use
goes to the next ones), started from the design's own mapping, so for the layer's own objective
its answer is never worse.

Per layer the candidates are the design's mapping and the mapper's. The mapper minimizes the
layer's energy, latency or EDP; the network's energy and latency are sums over the layers, so for
those objectives the best candidates add up to the best network, but the network's EDP
``(sum_i n_i E_i)(sum_i n_i T_i)`` is not separable (a layer's own EDP optimum can trade too much
energy for time against the network's balance), and budgets and caps couple the layers too. So the
combination is chosen by :func:`best_combination` over every choice of one candidate per layer,
scored as the network (objective, budget, caps: :func:`search.design.objective_values`), and the
design changes only when that lowers the network objective. Power is not polished (the mapper has
no power objective).

The mapper stops on time, so a polished result depends on the machine's speed; runs with an
evaluation budget (``--max-evaluations``, reproducible by design) are not polished. A stop request
(:mod:`search.stop`: the CLI's first SIGINT/SIGTERM) or Ctrl-C inside the mapper leaves the layers not
yet polished as they are; what was found so far is still combined.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from formulation.goals import Objective, seconds
from formulation.model.encoding import encode
from formulation.model.exact import evaluate_batch
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network
from formulation.technology import architecture_area_mm2
from search.design import Design, Evaluated, Goal, evaluate_design, objective_values
from search.mapper.mapper import map_layer
from search.mapper.result import MapperStatus
from search.stop import stop_requested

#: Up to this many candidate combinations are all scored; beyond, coordinate descent.
MAX_ENUMERATED = 1 << 16
POLISHED_OBJECTIVES = (Objective.ENERGY, Objective.LATENCY, Objective.EDP)


@dataclass(frozen=True)
class PolishReport:
    """What polishing did: ``before``/``after`` the network objective, the layers whose mapping
    changed, the layers the mapper proved optimal (for their own objective), wall time."""

    objective: Objective
    before: float
    after: float
    changed: tuple[str, ...]
    proven: tuple[str, ...]
    wall_s: float
    skipped: str | None = None

    def document(self) -> dict:
        return {"objective": self.objective.value, "before": self.before, "after": self.after,
                "improvement": 1 - self.after / self.before if self.before > 0 else 0.0,
                "changed_layers": list(self.changed), "proven_layers": list(self.proven), "wall_s": self.wall_s,
                "skipped": self.skipped}


def best_combination(energy: list[np.ndarray], cycles: list[np.ndarray], counts: np.ndarray, clock_GHz: float,
                     area_mm2: float, goal: Goal) -> tuple[int, ...]:
    """The choice of one candidate per layer (``energy[i][k]``, ``cycles[i][k]`` of candidate ``k`` of
    layer ``i``, run ``counts[i]`` times) with the least network objective under the goal's budget and caps.

    Exact over every combination when there are at most :data:`MAX_ENUMERATED`; otherwise coordinate
    descent from candidate 0 of every layer (each pass takes, layer by layer, the candidate best with
    the others fixed, until nothing changes), which never ends worse than the all-zero choice.
    Ties keep the lower index.
    """
    sizes = [len(e) for e in energy]

    def value(choice) -> float:
        e = sum(counts[i] * energy[i][k] for i, k in enumerate(choice))
        t = seconds(sum(counts[i] * cycles[i][k] for i, k in enumerate(choice)), clock_GHz)
        return float(objective_values(np.array([e]), np.array([t]), area_mm2, goal)[0])

    if int(np.prod(sizes, dtype=np.float64)) <= MAX_ENUMERATED:
        return min(itertools.product(*(range(n) for n in sizes)), key=value)
    choice = [0] * len(sizes)
    current = value(choice)
    changed = True
    while changed:
        changed = False
        for i, n in enumerate(sizes):
            for k in range(n):
                trial = choice[:i] + [k] + choice[i + 1:]
                v = value(trial)
                if v < current:
                    choice, current, changed = trial, v, True
    return tuple(choice)


def polish(network: Network, template: ArchTemplate, goal: Goal, best: Evaluated, *, time_limit_s: float,
           seed: int = 0, on_layer_done: Callable[[str], None] | None = None) -> tuple[Evaluated, PolishReport]:
    """The design with its mappings polished by the exact mapper, and what was done (module docstring)."""
    t0 = time.monotonic()
    before = best.score.value(goal.objective)
    if goal.objective not in POLISHED_OBJECTIVES:
        return best, PolishReport(goal.objective, before, before, (), (), 0.0,
                                  skipped=f"the exact mapper has no {goal.objective.value} objective")
    arch = template.instantiate(best.design.hardware)
    candidates, energy, cycles, proven = [], [], [], []
    layers = network.layers
    for i, entry in enumerate(layers):
        own = best.design.mappings[i]
        cands = [own]
        left = time_limit_s - (time.monotonic() - t0)
        budget = max(0.0, left / (len(layers) - i))
        if stop_requested():  # SIGINT/SIGTERM through the CLI's handler: the other layers keep their mappings
            budget = time_limit_s = 0.0
        if budget > 0:
            r = map_layer(entry.layer, arch, goal.objective, time_limit_s=budget, seed=seed, start=own)
            if r.mapping is not None:
                cands.append(encode(r.mapping))
            if r.status is MapperStatus.OPTIMAL:
                proven.append(entry.layer.name)
            if r.status is MapperStatus.INTERRUPTED:
                time_limit_s = 0.0  # Ctrl-C: the other layers keep their mappings
        ev = [evaluate_batch(entry.layer, arch, c) for c in cands]
        candidates.append(cands)
        energy.append(np.array([float(e.energy_pJ[0]) for e in ev]))
        cycles.append(np.array([float(e.cycles[0]) for e in ev]))
        if on_layer_done is not None:
            on_layer_done(entry.layer.name)
    counts = np.array([entry.count for entry in layers], dtype=float)
    choice = best_combination(energy, cycles, counts, arch.clock_GHz, architecture_area_mm2(arch), goal)
    design = Design(best.design.hardware, tuple(candidates[i][k] for i, k in enumerate(choice)))
    polished = evaluate_design(network, template, design, goal)
    if not polished.score.value(goal.objective) < before:
        polished, choice = best, (0,) * len(layers)
    changed = tuple(entry.layer.name for entry, k in zip(layers, choice) if k != 0)
    report = PolishReport(goal.objective, before, polished.score.value(goal.objective), changed, tuple(proven),
                          time.monotonic() - t0)
    return polished, report


__all__ = ["PolishReport", "best_combination", "polish", "MAX_ENUMERATED"]
