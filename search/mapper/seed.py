"""A first incumbent for the exact mapper: the best of random mappings, improved by descent.

Any legal mapping is a valid incumbent; a good one lets the bound cut more. The few best of
``samples`` random legal mappings (:func:`search.sampling.sample_mappings`) are each improved by
best-improvement descent over :func:`search.local_search.layer_neighbours` (one prime moved or two
exchanged, two adjacent loops swapped, one bypass toggled) until no neighbour is better or
``max_steps`` steps were taken. Deterministic: the same arguments (``seed`` and the number of
samples, never a time) give the same incumbent on any machine.
"""

from __future__ import annotations

import math

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS, TENSORS
from formulation.factors import prime_factors
from formulation.goals import Objective
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.model.validation import mapping_violations
from formulation.specs.types import Architecture, Layer
from search.local_search import layer_neighbours
from search.mapper.bounds import objective_of
from search.mapper.spread import full_spreads, transplant
from search.mapper.stationary import stationary_candidates, window_candidates
from search.sampling import SamplingError, sample_mappings

CHUNK = 10_000  # random mappings per further draw (``chunks``)
KEEP_PER_DRAW = 4  # best mappings of each draw kept as descent candidates
#: How many candidates are descended. A descent costs a few hundred evaluations (about 0.01 s), far
#: less than the sampling: measured on MobileNetV2 on eyeriss-like (0.9 s of sampling, as a 3-s first
#: slice of the network budget gives), 6 sampled, 2 of 8 spreads into 2 bases left expand_96_576_14 at
#: 5566 pJ·s (14% above its optimum, 4776), 16 sampled, 8 of 32 spreads into 4 bases reached 4787 in
#: 0.1 s more, and no layer of seven tried got worse.
DESCENTS = 16  # distinct sampled mappings descended
FULL_DESCENTS = 2  # ... and the best ones that use the most processing elements
SPREADS = 32  # whole-array spatial assignments (search.mapper.spread) put into the best samples
SPREAD_BASES = 4  # ... into that many bases: the start mappings first, then the best distinct samples
SPREAD_DESCENTS = 8  # ... and the best of those transplants descended
RESPREADS = 64  # whole-array spatial assignments put into the best local optimum (_respread)
RESPREAD_DESCENTS = 16  # ... and the best of those transplants descended
STATIONARY_SAMPLES = 4000  # random completions of the windowed layers' stationary families (search.mapper.stationary)
STATIONARY_DESCENTS = 2  # ... and the best of them descended
WINDOW_SAMPLES = 60_000  # random mappings of the window families (search.mapper.stationary.window_candidates)
WINDOW_SPREADS = 64  # ... over that many whole-array spatial assignments
WINDOW_DESCENTS = 32  # ... and the best of them descended
KICK_ROUNDS = 20  # rounds of large moves from the best local optimum (_kick)
KICK_VARIANTS = 2000  # ... moves drawn a round
KICK_DESCENTS = 4  # ... the best of them descended
KICK_FLIP = 0.3  # ... the share of moves that also flip one keep flag
#: The window families and the large moves cost about 0.6 s whatever the layer (on a tiny layer a seed took
#: 1.3 s with them in full, 0.09 s without, and the bound's exact leaves, search.exact_leaf, try the mapper for
#: 0.3 s): their counts are scaled by ``min(1, chunks / FULL_EFFORT_CHUNKS)``, so they run in full from a budget
#: of about 2.4 s on (:func:`search.mapper.mapper.sample_chunks`) and not at all below about 0.33 s.
FULL_EFFORT_CHUNKS = 4


def _pes(arrays: MappingArrays) -> np.ndarray:
    """Processing elements a mapping uses (the product of its spatial factors)."""
    return (arrays.spatial_x * arrays.spatial_y).reshape(arrays.size, -1).prod(axis=1)


def _scores(layer: Layer, arch: Architecture, arrays: MappingArrays, objective: Objective) -> np.ndarray:
    ev = evaluate_batch(layer, arch, arrays)
    return np.where(ev.fits, objective_of(objective, ev.energy_pJ, ev.cycles, arch.clock_GHz), np.inf)


def _descend(layer: Layer, arch: Architecture, objective: Objective, best: MappingArrays, value: float,
             max_steps: int) -> tuple[MappingArrays, float, int]:
    """Best-improvement descent from ``best`` (value ``value``): the local optimum, its value, the count scored."""
    scored = 0
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
    return best, value, scored


def seed_incumbent(layer: Layer, arch: Architecture, objective: Objective, samples: int = 2000, seed: int = 0,
                   max_steps: int = 40, start: MappingArrays | None = None,
                   chunks: int = 0, descents: int = DESCENTS) -> tuple[MappingArrays | None, int]:
    """The best local optimum of descents from the best candidates, and how many mappings were scored.

    ``samples`` mappings are drawn first, then ``chunks`` draws of :data:`CHUNK` more (a count, never
    a time: the same arguments give the same incumbent on any machine, however loaded).
    The ``descents`` best distinct sampled mappings and the :data:`FULL_DESCENTS` best of those
    using the most processing elements (the best :data:`KEEP_PER_DRAW` of each draw, overall and
    among its mappings using the most processing elements, compete) are each descended, and so is
    ``start``: a single descent from the best sample often ends in the same local optimum as
    ``start``, and one prime moved at a time rarely reaches full utilization from a partial one
    (measured on ResNet-18 conv1 on 16x16 ``simple``: 14 of 16 columns). For the same reason the
    :data:`SPREAD_DESCENTS` best transplants of :data:`SPREADS` whole-array spatial assignments into
    the first :data:`SPREAD_BASES` of ``start`` and the best samples (:mod:`search.mapper.spread`) are
    descended too (measured on ``layer1_3x3`` on a 64x48 array: from the co-design's mapping at EDP
    8831 to 8138 pJ·s), and so are the :data:`STATIONARY_DESCENTS` best of :data:`STATIONARY_SAMPLES`
    windowed-layer dataflows with a weight block and an input window kept in each PE
    (:mod:`search.mapper.stationary`; the same layer on 49x64 PEs: 7166 pJ·s), and the
    :data:`WINDOW_DESCENTS` best of :data:`WINDOW_SAMPLES` mappings of the window families over
    :data:`WINDOW_SPREADS` whole-array assignments (both counts, and the large moves' rounds, scaled down
    for ``chunks`` below :data:`FULL_EFFORT_CHUNKS`; :func:`search.mapper.stationary.window_candidates`, drawn
    from a stream of their own so that they do not depend on the uniform samples drawn before;
    with this method's seed 0 ResNet-18's ``layer1_3x3``, ``layer2_3x3``, ``layer2_3x3_s2`` and
    ``layer3_3x3_s2`` on ``eyeriss-like`` start at 4.166e5, 4.080e5, 1.119e5 and 1.122e5 pJ·s, the best
    mappings known, for every budget from 3 to 10 s, where sampling for a time gave 4.19-4.34e5 for
    ``layer1_3x3`` from run to run). Last, whole-array
    assignments are put into the best local optimum and the best of those descended (:func:`_respread`),
    and large moves from it are descended (:func:`_kick`).
    """
    rng = np.random.default_rng(seed)
    pool: list[MappingArrays] = []
    scored = 0
    for n in [samples] + [CHUNK] * max(0, chunks):
        if not n:
            continue
        try:
            drawn = sample_mappings(layer, arch, n, rng)
        except SamplingError:
            break
        values = _scores(layer, arch, drawn, objective)
        scored += drawn.size
        order = np.argsort(values, kind="stable")
        pes = _pes(drawn)[order]
        top = np.concatenate([order[:KEEP_PER_DRAW], order[pes == pes.max()][:KEEP_PER_DRAW]])
        top = top[np.isfinite(values[top])]
        if len(top):
            pool.append(drawn.take(top))
    candidates = [] if start is None else [start.take(slice(i, i + 1)) for i in range(start.size)]
    if pool:
        arrays = MappingArrays.concat(pool, spatial_order=False)
        values = _scores(layer, arch, arrays, objective)
        scored += arrays.size
        _, first_rows = np.unique(values, return_index=True)  # distinct values: distinct local optima likelier
        rows = [int(i) for i in first_rows if np.isfinite(values[i])]
        pes = _pes(arrays)
        full = [i for i in rows if pes[i] == pes[rows].max()] if rows else []
        bases = (candidates + [arrays.take(slice(i, i + 1)) for i in rows])[:SPREAD_BASES]
        spread, n = _spread_candidates(layer, arch, objective, bases, rng, SPREADS)
        scored += n
        rows = list(dict.fromkeys(rows[:descents] + full[:FULL_DESCENTS]))
        candidates += [arrays.take(slice(i, i + 1)) for i in rows] + [c for _, c in spread[:SPREAD_DESCENTS]]
    effort = min(1.0, max(0, chunks) / FULL_EFFORT_CHUNKS)
    windows = window_candidates(layer, arch, round(effort * WINDOW_SAMPLES), WINDOW_SPREADS,
                                np.random.default_rng([seed, 1]))
    for family, keep in ((stationary_candidates(layer, arch, STATIONARY_SAMPLES, rng), STATIONARY_DESCENTS),
                         (windows, math.ceil(effort * WINDOW_DESCENTS))):
        if family is not None:
            values = _scores(layer, arch, family, objective)
            scored += family.size
            best_rows = [int(i) for i in np.argsort(values, kind="stable")[:keep] if np.isfinite(values[i])]
            candidates += [family.take(slice(i, i + 1)) for i in best_rows]
    best, best_value = None, np.inf
    for cand in candidates:
        v = float(_scores(layer, arch, cand, objective)[0])
        scored += 1
        if not np.isfinite(v):
            continue
        local, v, n = _descend(layer, arch, objective, cand, v, max_steps)
        scored += n
        if v < best_value:
            best, best_value = local, v
    if best is not None:
        best, n = _respread(layer, arch, objective, best, best_value, rng, max_steps)
        scored += n
        best, n = _kick(layer, arch, objective, best, rng, max_steps, math.ceil(effort * KICK_ROUNDS))
        scored += n
    return best, scored


def _variants(layer: Layer, arch: Architecture, base: MappingArrays, count: int,
              rng: np.random.Generator) -> MappingArrays:
    """The legal ones of ``count`` large moves from ``base`` (a batch of one), each: the temporal factors of
    two dimensions (drawn with replacement) dealt again, each prime to a level drawn uniformly (the spatial
    factors kept), one level's loop order drawn again, and with probability :data:`KICK_FLIP` one keep
    flag of a level below the outermost flipped (where the level can hold the tensor)."""
    levels = len(arch.levels)
    t = np.repeat(base.temporal, count, axis=0)
    order, keep = np.repeat(base.order, count, axis=0), np.repeat(base.keep, count, axis=0)
    rows = np.arange(count)
    dims = [d for d in range(N_DIMS) if int(base.temporal[0, :, d].prod()) > 1]
    for _ in range(2 if dims else 0):
        pick = rng.integers(0, len(dims), size=count)
        for j, d in enumerate(dims):
            sel = rows[pick == j]
            t[sel, :, d] = 1
            for p in prime_factors(int(base.temporal[0, :, d].prod())):
                t[sel, rng.integers(0, levels, size=len(sel)), d] *= p
    order[rows, rng.integers(0, levels, size=count)] = rng.random((count, N_DIMS)).argsort(axis=-1)
    flip = rows[rng.random(count) < KICK_FLIP]
    keep[flip, rng.integers(1, levels, size=len(flip)), rng.integers(0, N_TENSORS, size=len(flip))] ^= True
    keep &= np.array([[tensor in lv.keeps for tensor in TENSORS] for lv in arch.levels], dtype=bool)[None]
    keep[:, 0] = True
    moved = MappingArrays(t, np.repeat(base.spatial_x, count, axis=0), np.repeat(base.spatial_y, count, axis=0),
                          order, keep)
    return moved.take(np.flatnonzero(~mapping_violations(layer, arch, moved)))


def _kick(layer: Layer, arch: Architecture, objective: Objective, best: MappingArrays, rng: np.random.Generator,
          max_steps: int, rounds: int = KICK_ROUNDS) -> tuple[MappingArrays, int]:
    """``best`` or a better local optimum found by ``rounds`` rounds of large moves
    (:func:`_variants`, :data:`KICK_VARIANTS` a round) from the best so far, the :data:`KICK_DESCENTS` best
    legal moves of each round descended; and how many mappings were scored. One-prime descents stop in
    local optima that differ from better ones in where a whole dimension's loops sit (measured on ResNet-18's
    ``layer1_3x3`` on ``eyeriss-like``, the best local optimum of window families drawn prime by prime over eight
    seeds: 4.166-4.341e5 pJ·s before, 4.166-4.186e5 after 20 rounds of 2,000, about 0.2 s more;
    ``layer2_3x3`` 4.083-4.205e5 before, 4.080-4.118e5 after). The moves keep the spatial factors."""
    value = float(_scores(layer, arch, best, objective)[0])
    scored = 1
    for _ in range(rounds):
        moved = _variants(layer, arch, best, KICK_VARIANTS, rng)
        if moved.size == 0:
            continue
        values = _scores(layer, arch, moved, objective)
        scored += moved.size
        for i in np.argsort(values, kind="stable")[:KICK_DESCENTS]:
            if not np.isfinite(values[i]):
                break
            local, v, n = _descend(layer, arch, objective, moved.take(slice(i, i + 1)), float(values[i]), max_steps)
            scored += n
            if v < value:
                best, value = local, v
    return best, scored


def _respread(layer: Layer, arch: Architecture, objective: Objective, best: MappingArrays, value: float,
              rng: np.random.Generator, max_steps: int) -> tuple[MappingArrays, int]:
    """``best`` (value ``value``) or the best local optimum of descents from transplants of up to
    :data:`RESPREADS` whole-array spatial assignments into it (:mod:`search.mapper.spread`), the
    :data:`RESPREAD_DESCENTS` best transplants descended; and how many mappings were scored. A local
    optimum's temporal tiling, orders and bypass often suit a whole-array assignment its one-prime
    moves cannot reach: measured on MobileNetV2's expand_96_576_14 on eyeriss-like, from the local optimum
    at 5554 pJ·s on 144 PEs the transplants of 38 of 40 assignments were legal and the best ones descended to
    the layer's optimum, 4776 pJ·s on 168 PEs, in 0.26 s."""
    found, scored = _spread_candidates(layer, arch, objective, [best], rng, RESPREADS)
    for v, cand in found[:RESPREAD_DESCENTS]:
        local, v, n = _descend(layer, arch, objective, cand, v, max_steps)
        scored += n
        if v < value:
            best, value = local, v
    return best, scored


def _spread_candidates(layer: Layer, arch: Architecture, objective: Objective, bases: list[MappingArrays],
                       rng: np.random.Generator, count: int) -> tuple[list[tuple[float, MappingArrays]], int]:
    """``(value, mapping)`` of the legal transplants of ``count`` whole-array spatial assignments into
    ``bases`` (:mod:`search.mapper.spread`) of finite value, best first (one prime at a time rarely
    reaches them), and how many transplants were scored."""
    level, spreads = full_spreads(layer, arch, rng, count)
    found, scored = [], 0
    for base in bases:
        for x, y in spreads:
            cand = transplant(layer, base, level, x, y)
            if mapping_violations(layer, arch, cand).any():
                continue
            v = float(_scores(layer, arch, cand, objective)[0])
            scored += 1
            if np.isfinite(v):
                found.append((v, len(found), cand))
    return [(v, c) for v, _, c in sorted(found, key=lambda f: (f[0], f[1]))], scored


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
