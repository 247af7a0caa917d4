"""Polishing a design's mappings with the exact mapper at its hardware (``optimize --polish-time S``).

The co-design's local search moves one or two factors at a time and ends in a local optimum of the
mappings; the exact mapper (:func:`search.mapper.map_layer`) searches a layer's whole mapspace with
proven cuts. Polishing gives every layer of the best design, at that design's hardware, a share of
the budget (:func:`search.mapper.schedule.map_layers`, on one worker or several: what a proven layer
does not use goes to the others, and the layers not proven get the time left), started from the design's own
mapping and from the same layer's mappings in the other starts' designs made legal for this hardware
(as they are and with X and Y swapped: starts often end on transposed meshes, and the mapper's
answers on the two differ), so for the layer's own objective its answer is never worse than any of
them.

Per layer the candidates are the design's mapping, the transferred ones and the mapper's. The
mapper minimizes the layer's energy, latency or EDP; the network's energy and latency are sums over
the layers, so for those objectives the best candidates add up to the best network, but the
network's EDP ``(sum_i n_i E_i)(sum_i n_i T_i)`` is not separable (a layer's own EDP optimum can
trade too much energy for time against the network's balance: to first order the network wants
each layer to minimize ``E_i + lambda T_i`` with ``lambda = E / T`` of the network, not
``E_i T_i``), and budgets and caps couple the layers too. So the combination is chosen by
:func:`best_combination` over every choice of one candidate per layer, scored as the network
(objective, budget, caps: :func:`search.design.objective_values`); then the local search's descent
and kicks run on the mappings with the hardware fixed (:data:`DESCENT_SHARE` of the time), scored
by the network objective itself, which takes exactly the steps the weighted objective would take
first. The design changes only when all this lowers the network objective. Power (always under a
latency cap: without one it falls without bound by idling) is polished with the mapper minimizing
each layer's energy: the candidates then include every layer's least-energy mapping, and the
combination and the descent minimize the network's power under the cap.

The mapper stops on time, so a polished result depends on the machine's speed; runs with an
evaluation budget (``--max-evaluations``, reproducible by design) are not polished. A stop request
(:mod:`search.stop`: the CLI's first SIGINT/SIGTERM) ends the running mappers with their best so
far and leaves the layers not yet polished as they are; what was found so far is still combined.
"""

from __future__ import annotations

import itertools
import math
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
from search.mapper.result import MapperStatus
from search.polish_layers import mapping_key, stack, transferred
from search.stop import stop_requested

#: Up to this many candidate combinations are all scored; beyond, coordinate descent.
MAX_ENUMERATED = 1 << 16
#: What the exact mapper minimizes per layer for each network objective (its own objectives: itself).
MAPPER_OBJECTIVE = {Objective.POWER: Objective.ENERGY}
#: The network descent after the combination gets this share of the polishing time, at most
#: :data:`DESCENT_MAX_S` (it converges in about a second on ResNet-18).
DESCENT_SHARE = 0.05
DESCENT_MAX_S = 10.0


@dataclass(frozen=True)
class PolishReport:
    """What polishing did: ``before``/``after`` the network objective, the layers whose mapping
    changed, the layers the mapper proved optimal (for their own objective), wall time, and how
    many transferred mappings (other starts' designs) were candidates."""

    objective: Objective
    before: float
    after: float
    changed: tuple[str, ...]
    proven: tuple[str, ...]
    wall_s: float
    skipped: str | None = None
    transferred: int = 0
    rounds: int = 0
    hardware_tried: tuple[dict, ...] = ()  # hardware points screened by search.refine, with their values
    error: str | None = None  # an internal error that ended polishing (codesign.phases.guarded)

    def document(self) -> dict:
        return {"objective": self.objective.value, "before": self.before, "after": self.after,
                "improvement": 1 - self.after / self.before if self.before > 0 else 0.0,
                "changed_layers": list(self.changed), "proven_layers": list(self.proven), "wall_s": self.wall_s,
                "transferred_candidates": self.transferred, "rounds": self.rounds,
                "hardware_tried": list(self.hardware_tried), "skipped": self.skipped, "error": self.error}


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
           seed: int = 0, on_layer_done: Callable[[str], None] | None = None, jobs: int = 1,
           others: tuple[Evaluated, ...] = ()) -> tuple[Evaluated, PolishReport]:
    """The design with its mappings polished by the exact mapper, and what was done (module docstring).

    ``others`` (other starts' designs) give each layer transferred mappings (:mod:`search.polish_layers`);
    ``jobs`` workers run the layers in parallel.
    """
    t0 = time.monotonic()
    before = best.score.value(goal.objective)
    if goal.objective is Objective.POWER and goal.caps.latency_s is None:
        return best, PolishReport(goal.objective, before, before, (), (), 0.0,
                                  skipped="no polishing for power without a latency cap")
    arch = template.instantiate(best.design.hardware)
    layers = network.layers
    candidates = []
    for i, entry in enumerate(layers):
        own = best.design.mappings[i]
        candidates.append([own] + transferred(entry.layer, arch, own, [o.design.mappings[i] for o in others]))
    n_transferred = sum(len(c) for c in candidates) - len(layers)
    descent_s = min(DESCENT_MAX_S, DESCENT_SHARE * time_limit_s)
    mapper_objective = MAPPER_OBJECTIVE.get(goal.objective, goal.objective)
    results, rounds = _map_layers(layers, arch, mapper_objective, candidates, t0 + time_limit_s - descent_s, jobs,
                                  seed, on_layer_done)
    energy, cycles = [], []
    for entry, cands in zip(layers, candidates):
        ev = [evaluate_batch(entry.layer, arch, c) for c in cands]
        energy.append(np.array([float(e.energy_pJ[0]) for e in ev]))
        cycles.append(np.array([float(e.cycles[0]) for e in ev]))
    counts = np.array([entry.count for entry in layers], dtype=float)
    choice = best_combination(energy, cycles, counts, arch.clock_GHz, architecture_area_mm2(arch), goal)
    design = Design(best.design.hardware, tuple(candidates[i][k] for i, k in enumerate(choice)))
    polished = evaluate_design(network, template, design, goal)
    if descent_s > 0 and not stop_requested() and math.isfinite(polished.score.value(goal.objective)):
        polished = _network_descent(network, template, goal, polished, t0 + time_limit_s, seed)
    if not polished.score.value(goal.objective) < before:
        polished = best
    changed = tuple(entry.layer.name for i, entry in enumerate(layers)
                    if mapping_key(polished.design.mappings[i]) != mapping_key(best.design.mappings[i]))
    proven = tuple(entry.layer.name for entry, r in zip(layers, results)
                   if r is not None and r.status is MapperStatus.OPTIMAL)
    report = PolishReport(goal.objective, before, polished.score.value(goal.objective), changed, proven,
                          time.monotonic() - t0, transferred=n_transferred, rounds=rounds)
    return polished, report


def _map_layers(layers, arch, objective: Objective, candidates: list[list], deadline: float, jobs: int, seed: int,
                on_layer_done) -> tuple[list, int]:
    """The mapper on every layer until ``deadline`` (:func:`search.mapper.schedule.map_layers`: a first pass,
    then the layers not proven get the time left, on ``jobs`` workers), started from every candidate. Appends
    each answer (after every search or slice) to its layer's candidates; returns the layers' final answers
    and the most searches (or slices) any layer had. No time left or a stop: no mapper at all, and after a
    stop the layers not searched yet get none (answers ``None``: they keep their candidates)."""
    from search.mapper.schedule import map_layers

    if deadline - time.monotonic() <= 0 or stop_requested():
        return [None] * len(layers), 0
    runs = [0] * len(layers)
    keys = [{mapping_key(c) for c in cands} for cands in candidates]

    def done(i: int, result) -> None:
        runs[i] += 1
        if result.mapping is not None:
            arrays = encode(result.mapping)
            if mapping_key(arrays) not in keys[i]:
                keys[i].add(mapping_key(arrays))
                candidates[i].append(arrays)
        if on_layer_done is not None:
            on_layer_done(layers[i].layer.name)

    results = map_layers([entry.layer for entry in layers], arch, objective,
                         time_limit_s=max(0.0, deadline - time.monotonic()), seed=seed,
                         starts=[stack(c, arch) for c in candidates], jobs=jobs, seeds_after_stop=False,
                         on_layer_done=done)
    return results, max(runs, default=0)


def _network_descent(network: Network, template: ArchTemplate, goal: Goal, design: Evaluated, deadline: float,
                     seed: int) -> Evaluated:
    """The local search's descent and kicks on every layer's mapping with the hardware fixed, scored by the
    network objective itself (:func:`search.local_search.local_search`), until ``deadline`` (monotonic)."""
    from search.local_search import local_search

    left = deadline - time.monotonic()
    if left <= 0:
        return design
    found, _ = local_search(network, template, design.design, goal, fixed_hardware=True, time_limit_s=left, seed=seed)
    return found if found.score.value(goal.objective) < design.score.value(goal.objective) else design


__all__ = ["PolishReport", "best_combination", "polish", "MAX_ENUMERATED"]
