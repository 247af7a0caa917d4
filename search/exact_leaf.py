"""The exact optimum at one hardware point: every layer's proven energy-latency front, combined.

At a single hardware point the network's designs are the per-layer mappings, chosen
independently. The exact mapper (:func:`search.mapper.map_layer` with ``front=True``) proves each
layer's energy-cycles front when its status is ``optimal``. Energy and latency are sums over the
layers (``n_i`` copies each), so their optima are the sums of the per-layer minima; EDP,
``(sum n_i E_i)(sum n_i C_i) / f``, is not separable, but its optimum lies on the network's front,
which is the Pareto-filtered Minkowski sum of the layers' fronts (a design off a layer's front is
dominated in both sums by swapping that layer's mapping for a dominating one). :func:`network_front`
builds it layer by layer, keeping only non-dominated ``(E, C)`` pairs (a Pareto DP: a dominated
partial sum stays dominated after adding the same later layers). With a latency cap, the best
energy among the front's points that meet the cap is the capped optimum.
"""

from __future__ import annotations

import math
import time

from formulation.goals import Objective, objective_value, seconds
from formulation.pareto import non_dominated
from formulation.specs.types import Architecture, Network

#: The first, short try of the exact mapper per layer (s); a layer it does not prove gets the rest.
QUICK_S = 0.3
#: Proven fronts kept per process (layer, architecture, objective -> front, or inf for no legal mapping):
#: a proof does not change, and a branch-and-bound run and the power band's runs (one per front point,
#: each over the same template) reach the same hardware points again.
MAX_PROVEN = 4096
_PROVEN: dict = {}


def pareto_filter(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated ``(energy, cycles)`` pairs (:func:`formulation.pareto.non_dominated`), by
    cycles ascending (ties: the least energy)."""
    return [points[i] for i in non_dominated([(c, e) for e, c in points])]


def network_front(fronts: list[list[tuple[float, float]]], counts: list[int]) -> list[tuple[float, float]]:
    """The Pareto front of ``(sum n_i E_i, sum n_i C_i)`` over one point of each layer's front (module docstring)."""
    acc = [(0.0, 0.0)]
    for front, n in zip(fronts, counts):
        acc = pareto_filter([(e + n * fe, c + n * fc) for e, c in acc for fe, fc in front])
    return acc


def best_on_front(front: list[tuple[float, float]], objective: Objective, clock_GHz: float,
                  latency_cap_s: float | None = None) -> float:
    """The objective's optimum (pJ*s, pJ or s) among the network front's points under the cap (inf if none)."""
    values = [objective_value(objective, e, seconds(c, clock_GHz)) for e, c in front
              if latency_cap_s is None or seconds(c, clock_GHz) <= latency_cap_s * (1 + 1e-12)]
    return min(values, default=math.inf)


def exact_point_value(network: Network, arch: Architecture, objective: Objective, *, deadline: float,
                      latency_cap_s: float | None = None) -> float | None:
    """The exact optimum of ``network`` on ``arch`` for ``objective``, or None if a layer is not proven by ``deadline``.

    Every distinct layer's front is proven by the exact mapper within what is left of the time
    (a monotonic-clock ``deadline``); a layer without a legal mapping makes the point infeasible
    (inf).
    """
    fronts = []
    for entry in network.layers:
        front = proven_front(entry.layer, arch, objective, deadline)
        if front is None or front == math.inf:
            return front
        fronts.append(front)
    front = network_front(fronts, [e.count for e in network.layers])
    return best_on_front(front, objective, arch.clock_GHz, latency_cap_s)


def proven_front(layer, arch: Architecture, objective: Objective, deadline: float):
    """The layer's proven ``(energy, cycles)`` front on ``arch`` (:func:`pareto_filter` of the exact mapper's),
    inf if it has no legal mapping, None if it is not proven by ``deadline``; proofs are kept
    (:data:`MAX_PROVEN`), so a point reached again costs nothing."""
    from search.mapper import MapperStatus, map_layer

    key = (layer, arch, objective)
    if key in _PROVEN:
        return _PROVEN[key]
    for share in (QUICK_S, math.inf):  # a short try first: the mapper seeds for a share of its budget
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        result = map_layer(layer, arch, objective, time_limit_s=min(left, share), front=True, seed_samples=100)
        if result.status is not MapperStatus.TIME_LIMIT:
            break
    if result.status is MapperStatus.INFEASIBLE:
        proven = math.inf
    elif result.status is MapperStatus.OPTIMAL:
        proven = pareto_filter([(float(e), float(c)) for e, c in result.pareto])
    else:
        return None
    if len(_PROVEN) >= MAX_PROVEN:
        _PROVEN.clear()
    _PROVEN[key] = proven
    return proven
