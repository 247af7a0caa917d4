"""Incumbents from exact searches with the spatial factors fixed to one whole-array assignment.

On a large PE array the branch and bound (:mod:`search.mapper.mapper`) explores its most
promising children first by their bounds, and random samples improved by descent
(:mod:`search.mapper.seed`) rarely combine a whole-array spatial assignment with the temporal
tiling, loop orders and bypass that suit it. Measured on ResNet-18's ``layer1_3x3`` at the
co-design's 64x48 PEs (GlobalBuffer 128 Ki words, RegisterFile 16 words): the mapper reached
9050 pJ·s in 40 s, while its search restricted to one of the 220 whole-array assignments (C = 64
on X; R = 3 and K = 16 on Y) proves 7217 pJ·s the best of that subspace in 8 s.

:class:`SpatialQueue` therefore runs, before the main search and for a share of its time, the
same branch and bound on :class:`FixedSpatialSpace` subspaces, one per whole-array assignment of
:func:`search.mapper.spread.full_spreads`, least root bound first, sharing the main search's
incumbent (whose bound cuts them). The queue keeps their place between the slices of
a layer's time (:mod:`search.mapper.schedule`): measured on ResNet-18 at 64x48 PEs (GlobalBuffer 96 Ki
words), one 240 s budget for the network on 2 workers left ``layer1_3x3`` at 8158 pJ·s (gap 19%)
when only a layer's first slice ran spatial searches, and at 7132 pJ·s (gap 2.9%) with the queue
going on in every slice. They only supply incumbents, each scored by the exact model:
the main search still covers the whole mapspace, so the certificate is unchanged in meaning.
The symmetric-xy rule is off inside them (a tiling's mirror is not in the same subspace).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


@dataclass
class SpatialQueue:
    """The whole-array subspaces of one layer still to search, least root bound first, and the open nodes
    of the one a deadline stopped: the spatial searches of the module docstring, given in slices.

    A layer's time often comes in slices (:mod:`search.mapper.schedule`), and a slice of a few seconds
    holds only the first subspaces (measured: the best subspace of ``layer1_3x3`` at 64x48 PEs needs
    about 4 s). The queue keeps where the last slice stopped, so the next slice goes on with the same
    subspace (from its open nodes) and then the next ones, and no subspace is searched twice. It holds
    arrays only and pickles with the open search that carries it
    (:class:`search.mapper.resume.OpenSearch`). Ranking (a root bound per subspace: under a second for
    220 subspaces) happens at the first :meth:`run`."""

    seed: int = 0
    level: int | None = None
    spreads: list | None = None  # [(x[7], y[7])], least root bound first, once ranked
    bounds: list | None = None
    cursor: int = 0
    partial: list | None = None  # the open nodes of subspace ``cursor`` when a deadline stopped it

    @classmethod
    def empty(cls) -> SpatialQueue:
        """A queue with nothing to search (the second part of a split search: the first keeps the queue)."""
        return cls(spreads=[], bounds=[])

    @property
    def done(self) -> bool:
        """Every subspace searched or cut (a ranked queue at its end)."""
        return self.spreads is not None and self.cursor >= len(self.spreads)

    def _rank(self, make_search, whole: Space, incumbent) -> None:
        layer, arch = whole.layer, whole.arch
        self.level, spreads = full_spreads(layer, arch, np.random.default_rng(self.seed), MAX_SPREADS)
        ranked = []
        for x, y in spreads if self.level is not None else ():
            sub = make_search(FixedSpatialSpace(whole, self.level, x, y))
            sub.inc = incumbent
            ranked.append((_root_bound(sub), len(ranked), x, y))
        ranked.sort(key=lambda r: (r[0], r[1]))
        self.spreads = [(r[2], r[3]) for r in ranked]
        self.bounds = [r[0] for r in ranked]

    def run(self, make_search, whole: Space, incumbent, deadline: float) -> int:
        """Search the subspaces from where the queue stands until ``deadline`` (``time.monotonic()``),
        each offering its mappings to ``incumbent``; returns how many mappings were scored. ``whole`` is
        the layer's whole mapspace (its options are filtered, not listed again); ``make_search(space)``
        builds a search over ``space``.

        The subspaces are taken by their root bound, least first (measured on ``layer1_3x3`` at 64x48
        PEs: the assignment of the best mapping found is the first of 220); a subspace whose root bound
        reaches the incumbent ends the queue (the rest are ranked after it: nothing better is in them).
        Each runs until it is done or the deadline (most finish in well under a second once the
        incumbent is good; giving the first ones only a slice each was measured to miss the best
        subspace, whose search needs about 4 s to reach it)."""
        if self.spreads is None:
            self._rank(make_search, whole, incumbent)
        scored = 0
        while not self.done and time.monotonic() < deadline:
            if self.bounds[self.cursor] >= incumbent.cutoff:
                self.cursor, self.partial = len(self.spreads), None
                break
            x, y = self.spreads[self.cursor]
            sub = make_search(FixedSpatialSpace(whole, self.level, x, y))
            sub.inc = incumbent
            sub.deadline = sub.switch = deadline
            left = sub.run(None, self.partial)
            scored += sub.evaluated
            if left:
                self.partial = left
                break
            self.cursor, self.partial = self.cursor + 1, None
        return scored


__all__ = ["FixedSpatialSpace", "SpatialQueue"]
