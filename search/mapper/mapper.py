"""The exact mapper: branch and bound over tilings, exhaustive over what the bounds cannot cut.

:func:`map_layer` searches the whole mapspace of one layer on fixed hardware
(:class:`search.mapper.space.Space`) for the mapping of least energy, latency or EDP under the exact
model (:func:`formulation.model.exact.evaluate_batch`), and returns it with a certificate
(:class:`search.mapper.result.Certificate`).

The tree search (nodes, bounds and cuts, the symmetry rule, the certificate) is
:mod:`search.mapper.tree`; this module runs it: the seeds' first incumbent (:mod:`search.mapper.seed`),
the time shares, the whole-array spatial subspaces (:mod:`search.mapper.spatial`) and the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from formulation.goals import Objective
from formulation.model.encoding import MappingArrays, decode
from formulation.specs.types import Architecture, Layer
from search.mapper.leaves import Rules
from search.mapper.result import Certificate, MapperResult, MapperStatus
from search.mapper.seed import CHUNK, seed_incumbent
from search.mapper.spatial import SpatialQueue
from search.mapper.tree import _Search

BEST_FIRST_AFTER = 0.5
#: Share of a finite time budget for drawing random mappings for the first incumbent: on layers
#: whose mapspace the search cannot cover in the budget (sliding windows), sampling finds better
#: mappings per second than the tree search, and a better incumbent cuts more.
SAMPLE_SHARE = 0.3
SAMPLE_MAX_S = 2.0  # ... at most this long (a layer the search proves quickly needs no more)
#: ... as a count, not a time: :data:`SAMPLE_RATE` mappings per second of that share (:func:`sample_chunks`),
#: so the same seed and budget give the same first incumbent at any load (sampling for a time had made
#: ResNet-18's layer1_3x3 on ``eyeriss-like`` start at 4.19e5 in one network run and 4.326e5 in the next).
#: Measured here (2 cores, one busy): ResNet-18's layers draw and score 42,000-157,000 mappings a second on
#: ``eyeriss-like`` (conv1 23,000), 145,000-170,000 on ``simple``.
SAMPLE_RATE = 50_000
#: Share of a finite time budget for exact searches with the spatial factors fixed to whole-array
#: assignments (:mod:`search.mapper.spatial`), after the seeds: on large arrays they find far better
#: incumbents than the seeds; ``SPATIAL_MAX_S`` caps it.
SPATIAL_SHARE = 0.25
SPATIAL_MAX_S = 30.0
#: ... which start when the main search has not finished after this share of the budget (a layer
#: proven by then needs none); the main search then goes on from where it stopped.
SPATIAL_AFTER = 0.3
#: ... and only when the incumbent is then more than this above the least open bound (measured:
#: on the 16x16 ``simple`` array the seeds are within 1-7% and the time is better spent on the
#: proof; on a 64x48 array they were 35% above and the spatial searches found 22% better).
SPATIAL_MIN_GAP = 0.1


def map_layer(layer: Layer, arch: Architecture, objective: Objective = Objective.EDP, *,
              time_limit_s: float = math.inf, rules: Rules = Rules(), seed_samples: int = 2000, seed: int = 0,
              start: MappingArrays | None = None, progress: Callable[[float], None] | None = None,
              front: bool = False, best_first_after: float = BEST_FIRST_AFTER,
              _open: Callable[[tuple], None] | None = None) -> MapperResult:
    """The best mapping of ``layer`` on ``arch`` for ``objective`` and its certificate (module docstring).

    ``start`` (optional mappings, e.g. a local search's) and ``seed_samples`` random mappings drawn
    with ``numpy.random.default_rng(seed)`` (more for a finite ``time_limit_s``: :func:`sample_chunks`),
    improved by descent (:mod:`search.mapper.seed`), give the first incumbent, the same for the same
    arguments.
    ``progress`` is called with the fraction of the mapspace covered (evaluated or cut) so far.
    With ``front`` the search cuts only what a mapping already found dominates in (energy,
    cycles), so that ``MapperResult.pareto`` is the proven energy-latency front of the layer when
    the status is ``optimal`` (the best for ``objective`` is on it).
    Ctrl-C ends the search with the best mapping so far (status ``interrupted``). The same
    arguments give the same first incumbent on any machine; a finite budget ends the search on the
    clock, so what the search adds to it can differ with the machine's speed. ``best_first_after`` (a share of the
    budget, ``inf``: never) moves the switch to best first (:data:`BEST_FIRST_AFTER`).
    """
    t0 = time.monotonic()
    search = _Search(layer, arch, objective, rules, t0 + time_limit_s, switch_time(t0, time_limit_s, best_first_after),
                     front)
    seeds, interrupted = 0, False
    try:
        first, seeds = seed_incumbent(layer, arch, objective, seed_samples, seed, start=start,
                                      chunks=sample_chunks(time_limit_s))
        if first is not None:
            search.inc.offer(layer, arch, first)
        spatial = math.isfinite(time_limit_s) and rules.bound and not front
        if spatial:  # a first try at the proof before the spatial searches
            search.spatial = SpatialQueue(seed)
            search.deadline = min(search.final_deadline, time.monotonic() + SPATIAL_AFTER * time_limit_s)
        stack = search.run(progress)
        if stack and spatial:
            seeds += spatial_searches(search, stack, time_limit_s, begin=True)
            search.deadline = search.final_deadline  # the main search goes on from its open nodes
            stack = search.run(progress, stack)
    except KeyboardInterrupt:  # the certificate falls back to the root's bound (the open nodes are unknown)
        interrupted, stack = True, None
    wall = time.monotonic() - t0
    if stack and _open is not None:  # search.mapper.resume keeps the open search to go on with
        _open((search, stack, seeds, wall))
    return _result(search, stack, arch, seeds, interrupted, wall)


def sample_chunks(time_limit_s: float) -> int:
    """Draws of :data:`search.mapper.seed.CHUNK` random mappings the seeds add for a budget of
    ``time_limit_s``: :data:`SAMPLE_RATE` per second of :data:`SAMPLE_SHARE` of it, at most
    :data:`SAMPLE_MAX_S`, rounded to whole draws (0 for an infinite budget). A function of the budget
    only, never of the clock: the same budget gives the same draws."""
    if not math.isfinite(time_limit_s) or time_limit_s <= 0:
        return 0
    return round(SAMPLE_RATE * min(SAMPLE_SHARE * time_limit_s, SAMPLE_MAX_S) / CHUNK)


def switch_time(t0: float, time_limit_s: float, best_first_after: float) -> float:
    """When a search started at ``t0`` with ``time_limit_s`` turns best first (``best_first_after`` of its
    time; ``inf``: never)."""
    return t0 + best_first_after * time_limit_s if math.isfinite(best_first_after) else math.inf


def _least_open_bound(stack) -> float:
    """The least bound over the open nodes (``inf`` with none)."""
    return min((float(n[5].min()) for n in stack if len(n[5])), default=math.inf)


def _open_gap(search: _Search, stack) -> float:
    """The incumbent over the least bound of the open nodes, less one."""
    lb = _least_open_bound(stack)
    return search.inc.value / lb - 1 if 0 < lb < math.inf else math.inf


def spatial_searches(search: _Search, stack, time_limit_s: float, begin: bool = False) -> int:
    """When the open gap is above :data:`SPATIAL_MIN_GAP`: :data:`SPATIAL_SHARE` of a budget of
    ``time_limit_s`` (at most :data:`SPATIAL_MAX_S`) of exact searches in whole-array spatial subspaces
    (:mod:`search.mapper.spatial`) sharing the incumbent, going on from where ``search.spatial`` (the
    queue; none: no spatial searches) stands; returns how many mappings they scored. Only a first search
    (``begin``) starts the queue: a later slice goes on with a queue its first slice started (measured on
    ResNet-18 on the 16x16 ``simple`` array, where the seeds are good: later slices starting queues
    spent 9 s of a 120 s budget on them and found nothing better)."""
    queue = search.spatial
    if queue is None or queue.done or (queue.spreads is None and not begin) \
            or _open_gap(search, stack) <= SPATIAL_MIN_GAP:
        return 0
    sub_rules = replace(search.rules, symmetry=False)
    end = min(search.final_deadline, time.monotonic() + min(SPATIAL_SHARE * time_limit_s, SPATIAL_MAX_S))
    layer, arch, objective = search.layer, search.arch, search.objective
    return queue.run(lambda space: _Search(layer, arch, objective, sub_rules, end, end, space=space),
                     search.space, search.inc, end)


def _result(search: _Search, stack, arch: Architecture, seeds: int, interrupted: bool, wall_s: float) -> MapperResult:
    """The answer and its certificate; an interrupted search bounds the remainder by the root's bound."""
    inc = search.inc
    covered = search.evaluated + sum(search.pruned.values())
    if interrupted:
        root = search.root()
        lb = search.bm.bounds(root[1], root[2], root[3], search.assigned(0)).value(search.objective, arch.clock_GHz)
        remaining, open_lb, optimal = search.mapspace - covered, float(lb[0]), False
    else:
        remaining = sum(search.counter.mappings(n[0], n[2], n[3]) for n in stack)
        open_lb = _least_open_bound(stack)
        optimal = not stack
    lower = inc.value if optimal else min(open_lb, inc.value)
    cert = Certificate(objective=search.objective, optimal=optimal and math.isfinite(inc.value), lower_bound=lower,
                       best=inc.value, mapspace=search.mapspace, evaluated=search.evaluated,
                       pruned=dict(search.pruned), remaining=remaining, wall_s=wall_s, seed_evaluations=seeds)
    stopped = MapperStatus.INTERRUPTED if interrupted else MapperStatus.TIME_LIMIT
    if inc.arrays is None:
        status = MapperStatus.INFEASIBLE if optimal else stopped
        return MapperResult(status, None, math.inf, 0, cert, tuple(inc.front))
    status = MapperStatus.OPTIMAL if optimal else stopped
    return MapperResult(status, decode(inc.arrays, arch), inc.energy, inc.cycles, cert, tuple(inc.front))


__all__ = ["map_layer"]
