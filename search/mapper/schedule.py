"""One time budget for the exact mapper over many layers: the easy ones first, the rest to the hard ones.

Layers differ by orders of magnitude in how long the mapper needs for its proof (on ResNet-18 and
the 16x16 ``simple`` hardware, two thirds of the layers prove in about 2 s and a few need tens of
seconds), and which ones are hard is not known in advance. :func:`map_layers` therefore runs two
passes over the layers:

1. every layer gets ``first_pass_share`` of the budget divided among the layers (a layer may use
   the pass's time left divided by the layers left, so time an easy layer does not need goes to
   the next ones);
2. the layers not finished (not proven optimal, not proven infeasible) share all the time left
   the same way, least gap first (the nearest to a proof are likeliest to finish early and leave
   their time to the others), each mapper started again from its best mapping so far (so a
   later pass's best is never worse); passes repeat while every open layer can still get
   :data:`MIN_PASS_S`.

A later search starts over (its tree is not kept), so its certificate is its own, except that
``lower_bound`` is the largest of the passes' bounds (each is a valid lower bound on the same
mapspace), ``best`` the best of them, and ``wall_s``, ``evaluated`` and ``seed_evaluations``
the sums over the passes. Without a finite budget there is a single pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from formulation.goals import Objective
from formulation.pareto import non_dominated
from formulation.model.encoding import MappingArrays, encode
from formulation.specs.types import Architecture, Layer
from search.mapper.mapper import map_layer
from search.mapper.result import MapperResult, MapperStatus

#: Share of a finite budget for the first pass over every layer (module docstring).
FIRST_PASS_SHARE = 0.3
#: Further passes run while every open layer can get at least this long (s).
MIN_PASS_S = 2.0
_DONE = (MapperStatus.OPTIMAL, MapperStatus.INFEASIBLE)


def _merge(first: MapperResult, second: MapperResult) -> MapperResult:
    """The second pass's result with the first's bound, best mapping and effort folded in (module docstring)."""
    a, b = first.certificate, second.certificate
    better = second if second.mapping is not None and b.best <= a.best else first
    best = min(a.best, b.best)
    cert = replace(b, lower_bound=min(best, max(a.lower_bound, b.lower_bound)), best=best,
                   evaluated=a.evaluated + b.evaluated, seed_evaluations=a.seed_evaluations + b.seed_evaluations,
                   wall_s=a.wall_s + b.wall_s)
    points = sorted(set(first.pareto) | set(second.pareto))
    pareto = tuple(points[j] for j in non_dominated(np.array([[c, e] for e, c in points]))) if points else ()
    return replace(second, mapping=better.mapping, energy_pJ=better.energy_pJ,
                   cycles=better.cycles, certificate=cert, pareto=pareto)


def map_layers(layers: Sequence[Layer], arch: Architecture, objective: Objective, *, time_limit_s: float = math.inf,
               seed: int = 0, starts: Sequence[MappingArrays | None] | None = None,
               first_pass_share: float = FIRST_PASS_SHARE,
               on_layer_done: Callable[[int, MapperResult], None] | None = None) -> list[MapperResult]:
    """:func:`search.mapper.map_layer` for every layer within one budget of ``time_limit_s`` seconds
    (module docstring). ``starts[i]`` (optional) seeds layer ``i``'s first search; ``on_layer_done(i,
    result)`` is called after each search of layer ``i`` (twice for a layer searched in both passes).
    After a Ctrl-C (a layer's status ``interrupted``) the layers not searched yet get no search time
    (their starts and seeds only) and there is no second pass."""
    t0 = time.monotonic()
    starts = list(starts) if starts is not None else [None] * len(layers)
    finite = math.isfinite(time_limit_s)
    results: list[MapperResult] = []

    def share(deadline: float, left_layers: int) -> float:
        if any(r.status is MapperStatus.INTERRUPTED for r in results):
            return 0.0
        return max(0.0, (deadline - time.monotonic()) / max(1, left_layers)) if finite else math.inf

    first_deadline = t0 + (first_pass_share * time_limit_s if finite else 0.0)
    for i, layer in enumerate(layers):
        r = map_layer(layer, arch, objective, time_limit_s=share(first_deadline, len(layers) - i), seed=seed,
                      start=starts[i])
        results.append(r)
        if on_layer_done is not None:
            on_layer_done(i, r)
    if not finite or any(r.status is MapperStatus.INTERRUPTED for r in results):
        return results
    deadline = t0 + time_limit_s
    while True:
        open_layers = sorted((i for i, r in enumerate(results) if r.status not in _DONE),
                             key=lambda i: (results[i].certificate.gap, i))
        if not open_layers or deadline - time.monotonic() < MIN_PASS_S * len(open_layers):
            return results
        for k, i in enumerate(open_layers):
            first = results[i]
            start = encode(first.mapping) if first.mapping is not None else starts[i]
            r = map_layer(layers[i], arch, objective, time_limit_s=share(deadline, len(open_layers) - k), seed=seed,
                          start=start)
            results[i] = _merge(first, r)
            if on_layer_done is not None:
                on_layer_done(i, results[i])
            if r.status is MapperStatus.INTERRUPTED:
                return results


__all__ = ["FIRST_PASS_SHARE", "map_layers"]
