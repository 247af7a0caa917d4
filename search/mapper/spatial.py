"""Incumbents from exact searches with the spatial factors fixed to one whole-array assignment.

On a large PE array the branch and bound (:mod:`search.mapper.mapper`) explores its most
promising children first by their bounds, and random samples improved by descent
(:mod:`search.mapper.seed`) rarely combine a whole-array spatial assignment with the temporal
tiling, loop orders and bypass that suit it. Measured on ResNet-18's ``layer1_3x3`` at the
co-design's 64x48 PEs (GlobalBuffer 128 Ki words, RegisterFile 16 words): the mapper reached
9050 pJ·s in 40 s, while its search restricted to one of the 220 whole-array assignments (C = 64
on X; R = 3 and K = 16 on Y) proves 7217 pJ·s the best of that subspace in 8 s.

:func:`spread_searches` therefore runs, before the main search and for a share of its time, the
same branch and bound on :class:`FixedSpatialSpace` subspaces, one per whole-array assignment of
:func:`search.mapper.spread.full_spreads`, least root bound first, sharing the main search's
incumbent (whose bound cuts them). They only supply incumbents, each scored by the exact model:
the main search still covers the whole mapspace, so the certificate is unchanged in meaning.
The symmetric-xy rule is off inside them (a tiling's mirror is not in the same subspace).
"""

from __future__ import annotations

import time
from functools import cached_property

import numpy as np

from search.mapper.space import DimOptions, Space
from search.mapper.spread import full_spreads

#: Whole-array assignments listed per layer (a random choice among more, seeded).
MAX_SPREADS = 256


class FixedSpatialSpace(Space):
    """The mapspace with the spatial factors at fanout ``level`` fixed to ``x[7]``, ``y[7]`` and none elsewhere."""

    def __init__(self, whole: Space, level: int, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__(whole.layer, whole.arch)
        self.whole = whole
        self.spatial = (level, np.asarray(x), np.asarray(y))

    @cached_property
    def options(self) -> tuple[DimOptions, ...]:
        level, x, y = self.spatial
        out = []
        for d, o in enumerate(self.whole.options):
            others = np.delete(o.x * o.y, level, axis=1)
            keep = (o.x[:, level] == x[d]) & (o.y[:, level] == y[d]) & (others == 1).all(axis=1)
            out.append(DimOptions(o.temporal[keep], o.x[keep], o.y[keep]))
        return tuple(out)


def _root_bound(sub) -> float:
    """The bound of a subspace search's root (its single-option dimensions already placed)."""
    root = sub.root()
    return float(sub.bm.bounds(root[1], root[2], root[3], sub.assigned(0)).value(sub.objective, sub.arch.clock_GHz)[0])


def spread_searches(make_search, whole: Space, incumbent, deadline: float, seed: int = 0) -> int:
    """Branch and bound on one :class:`FixedSpatialSpace` after another (module docstring) until
    ``deadline`` (``time.monotonic()``), each offering its mappings to ``incumbent``; returns how many
    mappings were scored. ``whole`` is the layer's whole mapspace (its options are filtered, not
    listed again); ``make_search(space)`` builds a search over ``space``.

    The subspaces are taken by their root bound, least first (measured on ``layer1_3x3`` at 64x48
    PEs: the assignment of the best mapping found is the first of 220), and skipped when that bound
    reaches the incumbent (nothing better is in them); each runs until it is done or the deadline
    (most finish in well under a second once the incumbent is good; giving the first ones only a
    slice each was measured to miss the best subspace, whose search needs about 4 s to reach it)."""
    layer, arch = whole.layer, whole.arch
    level, spreads = full_spreads(layer, arch, np.random.default_rng(seed), MAX_SPREADS)
    if level is None or not spreads:
        return 0
    ranked = []
    for x, y in spreads:
        if time.monotonic() >= deadline:
            break
        sub = make_search(FixedSpatialSpace(whole, level, x, y))
        sub.inc = incumbent
        ranked.append((_root_bound(sub), len(ranked), sub))
    ranked.sort(key=lambda r: (r[0], r[1]))
    scored = 0
    for bound, _, sub in ranked:
        now = time.monotonic()
        if now >= deadline or bound >= incumbent.cutoff:
            break
        sub.deadline = sub.switch = deadline
        sub.run()
        scored += sub.evaluated
    return scored


__all__ = ["FixedSpatialSpace", "spread_searches"]
