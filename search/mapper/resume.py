"""A search of the exact mapper that its time limit stopped, kept to go on with later, elsewhere or in parts.

:func:`search_layer` is :func:`search.mapper.mapper.map_layer` that also hands back its open search
(:class:`OpenSearch`: the open nodes, the incumbent and the counts) when the time limit ends it; a
later call with ``resume`` goes on from those nodes for more time, so a layer's time can be given in
slices (:mod:`search.mapper.schedule`) without searching any node twice. An open search pickles in a
few MB (the bound model and leaf expander are rebuilt around it) and can be split into two that cover
its open nodes between them (:meth:`OpenSearch.split`), for two workers.

Why going on is exact: the branch and bound's state between two nodes is the stack of open nodes,
the incumbent and the counts (:class:`search.mapper.tree._Search`); every mapping not evaluated or
cut lies in an open node, so expanding the same stack later covers the same mappings as going on
without a stop would, and the certificate's bound (the least over the open nodes) stays valid at
every stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from formulation.goals import Objective
from formulation.specs.types import Architecture, Layer
from search.mapper.mapper import BEST_FIRST_AFTER, _result, map_layer, spatial_searches, switch_time
from search.mapper.tree import _Search
from search.mapper.result import MapperResult
from search.mapper.spatial import SpatialQueue


@dataclass
class OpenSearch:
    """A search its time limit stopped, with everything needed to go on (:func:`search_layer`). It pickles
    as its open nodes, incumbent and counts (a few MB), and is rebuilt around them when its ``search``
    is first used, so a search can go on in another worker. The process that schedules the slices
    only parks and forwards open searches, so it never rebuilds them (a rebuild computes the layer's
    mapspace: 0.27 s per layer on MobileNetV2, 8 s of a 10-s polish before it was deferred)."""

    search: _Search
    stack: list
    seeds: int
    wall_s: float

    def __getstate__(self) -> dict:
        if "search" not in self.__dict__:  # never rebuilt here: forward the state as it came
            return dict(self._state, stack=self.stack, seeds=self.seeds, wall_s=self.wall_s)
        s, inc = self.search, self.search.inc
        return {"stack": self.stack, "seeds": self.seeds, "wall_s": self.wall_s,
                "search": (s.layer, s.arch, s.objective, s.rules, s.front), "evaluated": s.evaluated,
                "spatial": s.spatial,
                "pruned": dict(s.pruned), "incumbent": (inc.value, inc.arrays, inc.energy, inc.cycles, inc.front)}

    def __setstate__(self, state: dict) -> None:
        self._state = state
        self.stack, self.seeds, self.wall_s = state["stack"], state["seeds"], state["wall_s"]

    def __getattr__(self, name: str):
        """``search``, rebuilt from the unpickled state on first use (only reached when it is not set)."""
        if name != "search" or "_state" not in self.__dict__:
            raise AttributeError(name)
        state = self._state
        layer, arch, objective, rules, front = state["search"]
        search = _Search(layer, arch, objective, rules, 0.0, 0.0, front)
        search.evaluated = state["evaluated"]
        search.pruned.update(state["pruned"])
        search.spatial = state.get("spatial")
        inc = search.inc
        inc.value, inc.arrays, inc.energy, inc.cycles, inc.front = state["incumbent"]
        self.search = search
        return search

    def split(self) -> tuple[OpenSearch, OpenSearch] | None:
        """Two open searches whose open nodes are this one's, each node's partial tilings dealt alternately
        (so both get nodes of every depth and bound), each with this incumbent; the first keeps the counts
        so far and the spatial searches still to do, the second starts from none, so that the parts'
        counts add up to the search's. Searching both to the end covers what this one would (their
        certificates combine:
        :func:`search.mapper.schedule.combine`). None when there is a single partial tiling."""
        parts: tuple[list, list] = ([], [])
        for node in self.stack:
            for j, part in enumerate(parts):
                half = (node[0],) + tuple(a[j::2] for a in node[1:])
                if len(half[1]):
                    part.append(half)
        if not parts[1]:
            return None
        other = OpenSearch.__new__(OpenSearch)
        other.__setstate__(dict(self.__getstate__(), stack=parts[1], seeds=0, wall_s=0.0, evaluated=0, pruned={},
                                spatial=None if self.search.spatial is None else SpatialQueue.empty()))
        return OpenSearch(self.search, parts[0], self.seeds, self.wall_s), other


def search_layer(layer: Layer, arch: Architecture, objective: Objective = Objective.EDP, *,
                 resume: OpenSearch | None = None, time_limit_s: float = math.inf,
                 progress: Callable[[float], None] | None = None, best_first_after: float = BEST_FIRST_AFTER,
                 **options) -> tuple[MapperResult, OpenSearch | None]:
    """:func:`map_layer` (``options`` are its keywords) that can be continued: the result and, when the
    time limit ended the search with open nodes, an :class:`OpenSearch` to pass as ``resume`` for
    ``time_limit_s`` more seconds on the same tree (no node searched again). A search (or slice) goes
    depth first (which finds better incumbents) and expands the open node of least bound first after
    ``best_first_after`` of its time (``inf``: never; a slice that is not a layer's last is better spent
    depth first). The certificate of a continued search counts the
    effort (``evaluated``, ``pruned``, ``wall_s``: time spent searching) of all its slices. A continued
    search first goes on with its whole-array spatial searches (:func:`search.mapper.mapper.spatial_searches`,
    the same share of the slice as a first search gives them) while its gap is large and some are left."""
    if resume is None:
        holder: list = []
        result = map_layer(layer, arch, objective, time_limit_s=time_limit_s, progress=progress,
                           best_first_after=best_first_after, _open=holder.append, **options)
        return result, (OpenSearch(*holder[0]) if holder else None)
    t0 = time.monotonic()
    search = resume.search
    search.deadline = search.final_deadline = t0 + time_limit_s
    search.switch = switch_time(t0, time_limit_s, best_first_after)
    interrupted, stack, seeds = False, None, resume.seeds
    try:
        seeds += spatial_searches(search, resume.stack, time_limit_s)
        stack = search.run(progress, resume.stack)
    except KeyboardInterrupt:
        interrupted = True
    wall = resume.wall_s + time.monotonic() - t0
    result = _result(search, stack, arch, seeds, interrupted, wall)
    return result, (OpenSearch(search, stack, seeds, wall) if stack else None)


__all__ = ["OpenSearch", "search_layer"]
