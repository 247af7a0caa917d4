"""Every layer of a network mapped by the exact mapper on fixed hardware (``optimize --method exact``).

Each distinct layer gets :func:`search.mapper.map_layer` for the goal's objective. Energy and
latency are sums over layers, so the per-layer optima are the network optimum; for EDP the
per-layer EDP optima are what is certified (the network's ``(sum E)(sum T)`` is not separable).
First the project's local search (``local_search_share`` of the budget) gives every layer a
start (:func:`search.mapper.seed.local_search_starts`), so the result is never worse than it. The
rest of the budget is shared by :func:`search.mapper.schedule.map_layers` on the run's ``--jobs`` workers:
a first pass over every layer, then the layers not proven yet share the time left (on workers, each
going on from where its search stopped). The certificates are in ``OptimizeResult.extra``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from formulation.goals import Objective
from formulation.model.encoding import encode
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network, SpecError
from search.design import Design, Goal, evaluate_design
from search.mapper.result import MapperResult, MapperStatus
from search.mapper.schedule import map_layers
from search.mapper.seed import local_search_starts
from search.outcome import OptimizeResult, OptimizeStatus, StartResult

LOCAL_SEARCH_S = 30.0  # local search budget for the starts when the run has no time limit

OBJECTIVES = (Objective.ENERGY, Objective.LATENCY, Objective.EDP)


def map_network(network: Network, template: ArchTemplate, goal: Goal, *, time_limit_s: float = math.inf,
                seed: int = 0, local_search_share: float = 0.25, jobs: int = 1,
                on_layer_done: Callable[[int, MapperResult], None] | None = None):
    """An :class:`search.optimize.OptimizeResult` whose design maps every layer with :func:`map_layer`, the
    layers on ``jobs`` worker processes; ``on_layer_done(i, result)`` is called after each search (or slice)
    of layer ``i`` with its answer so far."""
    if goal.objective not in OBJECTIVES:
        raise SpecError(f"--objective = {goal.objective.value!r}: the exact mapper minimizes energy, latency or edp")
    if template.mesh_x_range[0] != template.mesh_x_range[1] or template.mesh_y_range[0] != template.mesh_y_range[1] \
            or any(lo != hi for _, lo, hi in template.size_ranges):
        raise SpecError("--method = 'exact': maps fixed hardware only; add --fixed-hardware --arch NAME")
    hw = template.base_hardware()
    arch = template.instantiate(hw)
    t0 = time.monotonic()
    starts = None
    if local_search_share > 0:
        ls_budget = local_search_share * time_limit_s if math.isfinite(time_limit_s) else LOCAL_SEARCH_S
        starts = local_search_starts(network, arch, goal.objective, ls_budget, seed)
    left = time_limit_s - (time.monotonic() - t0)
    results = map_layers([e.layer for e in network.layers], arch, goal.objective, time_limit_s=max(0.0, left),
                         seed=seed, starts=starts, jobs=jobs,
                         on_layer_done=on_layer_done)
    wall = time.monotonic() - t0
    evaluations = sum(r.certificate.evaluated + r.certificate.seed_evaluations for r in results)
    certs = {e.layer.name: r.certificate.to_json() for e, r in zip(network.layers, results)}
    if any(r.mapping is None for r in results):
        status = OptimizeStatus.INFEASIBLE
        return OptimizeResult(status, "exact mapper", None, (), wall, evaluations,
                              ("no legal mapping",), {"certificates": certs})
    design = Design(hw, tuple(encode(r.mapping) for r in results))
    best = evaluate_design(network, template, design, goal)
    timed_out = any(r.status is not MapperStatus.OPTIMAL for r in results)
    # Every layer proven optimal proves the network optimal only for a separable objective: energy and
    # latency are sums over the layers, but the network's EDP (sum E)(sum T) is not the sum of the
    # layers' EDPs, so per-layer EDP optima are only a converged design.
    separable = goal.objective in (Objective.ENERGY, Objective.LATENCY)
    status = (OptimizeStatus.TIME_LIMIT if timed_out
              else OptimizeStatus.OPTIMAL if separable else OptimizeStatus.CONVERGED)
    if any(r.status is MapperStatus.INTERRUPTED for r in results):
        status = OptimizeStatus.INTERRUPTED
    start = StartResult(0, best, None, "exact", evaluations, wall, timed_out=timed_out)
    return OptimizeResult(status, "exact mapper (branch and bound per layer)", best, (start,), wall, evaluations,
                          (), {"certificates": certs})


__all__ = ["map_network"]
