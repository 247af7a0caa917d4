"""A first incumbent for the exact mapper: the best of random mappings, improved by descent.

Any legal mapping is a valid incumbent; a good one lets the bound cut more. The best of
``samples`` random legal mappings (:func:`search.sampling.sample_mappings`) is improved by
best-improvement descent over :func:`search.local_search.layer_neighbours` (one prime moved or two
exchanged, two adjacent loops swapped, one bypass toggled) until no neighbour is better or
``max_steps`` steps were taken. Deterministic for a given ``seed`` (unless sampling for a time).
"""

from __future__ import annotations

import time

import numpy as np

from formulation.goals import Objective
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.model.validation import mapping_violations
from formulation.specs.types import Architecture, Layer
from search.local_search import layer_neighbours
from search.mapper.bounds import objective_of
from search.sampling import SamplingError, sample_mappings

CHUNK = 10_000  # random mappings per draw when sampling for a time


def _scores(layer: Layer, arch: Architecture, arrays: MappingArrays, objective: Objective) -> np.ndarray:
    ev = evaluate_batch(layer, arch, arrays)
    return np.where(ev.fits, objective_of(objective, ev.energy_pJ, ev.cycles, arch.clock_GHz), np.inf)


def seed_incumbent(layer: Layer, arch: Architecture, objective: Objective, samples: int = 2000, seed: int = 0,
                   max_steps: int = 40, start: MappingArrays | None = None,
                   sample_time_s: float = 0.0) -> tuple[MappingArrays | None, int]:
    """The descended best of the random samples (and of ``start``), and how many mappings were scored.

    ``samples`` mappings are drawn first; with ``sample_time_s`` more are drawn, in chunks of
    :data:`CHUNK`, until that much time has passed (then the result depends on the machine's speed).
    """
    rng = np.random.default_rng(seed)
    pool = [] if start is None else [start]
    scored = 0
    t0 = time.monotonic()
    first = True
    while first or time.monotonic() - t0 < sample_time_s:
        n = samples if first else CHUNK
        first = False
        if not n:
            continue
        try:
            drawn = sample_mappings(layer, arch, n, rng)
        except SamplingError:
            break
        values = _scores(layer, arch, drawn, objective)
        scored += drawn.size
        j = int(np.argmin(values))
        if np.isfinite(values[j]):
            pool.append(drawn.take(slice(j, j + 1)))
    if not pool:
        return None, scored
    fields = ("temporal", "spatial_x", "spatial_y", "order", "keep")
    arrays = MappingArrays(*(np.concatenate([getattr(p, f) for p in pool]) for f in fields))
    values = _scores(layer, arch, arrays, objective)
    scored += arrays.size
    j = int(np.argmin(values))
    if not np.isfinite(values[j]):
        return None, scored
    best, value = arrays.take(slice(j, j + 1)), float(values[j])
    for _ in range(max_steps):
        nbrs = layer_neighbours(arch, best)
        nbrs = nbrs.take(np.flatnonzero(~mapping_violations(layer, arch, nbrs)))
        if nbrs.size == 0:
            break
        values = _scores(layer, arch, nbrs, objective)
        scored += nbrs.size
        j = int(np.argmin(values))
        if not values[j] < value * (1 - 1e-12):
            break
        best, value = nbrs.take(slice(j, j + 1)), float(values[j])
    return best, scored


__all__ = ["seed_incumbent"]


def local_search_starts(network, arch: Architecture, objective: Objective, time_limit_s: float,
                        seed: int = 0) -> list[MappingArrays] | None:
    """Each layer's mapping from the project's local search on fixed hardware
    (:func:`search.optimize.optimize` with ``fixed_hardware=True``, one start, one worker), to start
    the exact mapper from; ``None`` when it finds nothing."""
    from search.design import Goal  # the pipeline (relaxation, IPOPT) loads only when this start is asked for
    from search.optimize import fixed_template, optimize

    res = optimize(network, fixed_template(arch), Goal(objective), starts=1, jobs=1, seed=seed,
                   fixed_hardware=True, time_limit_s=time_limit_s)
    return None if res.best is None else list(res.best.design.mappings)
