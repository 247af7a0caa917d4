"""Branch-and-bound over the discrete hardware of a template: a proven lower bound and the gap of a design.

Each node is a box of integer hardware (:class:`~formulation.bound.layer_terms.HardwareBox`: mesh
sides and variable buffer sizes); its bound is the optimum of the node relaxation
(:class:`~formulation.bound.model.NodeModel`), which no legal design with hardware in the box and
any mappings beats. Nodes are explored best bound first; a node is split in two at the geometric
middle of its widest variable (in log terms), so the children cover every integer point of the
parent. A node whose bound reaches ``incumbent / (1 + rel_tol)`` is pruned; a node whose mesh is a
single point and whose sizes span at most a factor :data:`LEAF_SIZE_RATIO` is not split further.

The proven lower bound is the smallest bound among the nodes that cover the template when the
search stops (open, pruned and unsplittable nodes): every legal design lies in one of them. A child
left unsolved when the time runs out keeps its parent's bound (valid for every part of the parent),
so the search ends within one node solve of its time limit. Once the
least bound is an unsplittable node's, the search stops: best first, every open node's bound is at
least that one, and splitting a node only raises its children's bounds, so the minimum cannot
change (on ResNet-18 at 2 mm² that node, 64x64 PEs with the smallest buffers, is reached after
about a hundred nodes; the time left goes to whatever runs beside the bound, e.g. polishing).

On templates small enough (:data:`EXACT_LEAF_POINTS` hardware points, or ``exact_leaves=True``)
boxes are split down to single hardware points, whose bound is then the exact optimum there
(:mod:`search.exact_leaf`: every layer's proven energy-latency front from the exact mapper,
combined by a Pareto DP), so a complete run with ``rel_tol=0`` returns the true optimum as its
bound. A point whose layers the mapper does not prove in time keeps the relaxation's bound.
"""

from __future__ import annotations

import heapq
import itertools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from formulation.bound.layer_terms import HardwareBox
from formulation.bound.model import BOUNDED_OBJECTIVES, NodeModel
from formulation.goals import MW_PER_PJ_PER_S, Objective
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network

#: Sizes are not split below this ratio hi/lo (the mesh sides are split down to single values).
LEAF_SIZE_RATIO = 1.05
#: Default relative gap at which a run counts as optimal.
DEFAULT_REL_TOL = 0.01
#: Templates with at most this many hardware points get exact leaves by default (``exact_leaves=None``).
EXACT_LEAF_POINTS = 64
#: Default time for the exact mapper at one leaf (all its layers), seconds.
EXACT_LEAF_TIME_S = 10.0
#: Stop once the least bound is an unsplittable node's (module docstring); off: go on until the time or node limit.
STOP_AT_FINAL = True


@dataclass(frozen=True)
class BoundResult:
    """What the branch-and-bound proved: ``lower_bound`` in the objective's units."""

    lower_bound: float
    incumbent: float | None
    gap: float | None              # incumbent / lower_bound - 1
    rel_tol: float
    nodes: int
    open_nodes: int
    wall_s: float
    complete: bool                 # the bound is final: every node pruned or unsplittable, or the least unsplittable
    best_box: HardwareBox | None   # the box holding the smallest bound
    exact_leaves: int = 0          # single hardware points whose bound is the exact optimum there
    leaf_optimum: float | None = None  # the best of those exact optima (a design's value), if any

    @property
    def optimal(self) -> bool:
        return self.gap is not None and self.gap <= self.rel_tol

    def document(self) -> dict:
        """The bound's part of ``result.json``: ``lower_bound``, ``gap`` and the details under ``bound``."""
        return {"lower_bound": self.lower_bound if math.isfinite(self.lower_bound) else None, "gap": self.gap,
                "bound": {"covers": BOUND_COVERS, "gap_tolerance": self.rel_tol, "nodes": self.nodes,
                          "open_nodes": self.open_nodes, "complete": self.complete, "wall_s": self.wall_s,
                          "exact_leaves": self.exact_leaves,
                          "lowest_box": None if self.best_box is None else {
                              "mesh_x": list(self.best_box.mesh_x), "mesh_y": list(self.best_box.mesh_y),
                              **{name: [lo, hi] for name, lo, hi in self.best_box.sizes}}}}


#: What the bound is a bound over (written into result.json).
BOUND_COVERS = ("every hardware point of the template within the area budget (mesh sides and buffer sizes, "
                "integers in their ranges) and every legal mapping of every layer (tiling, loop orders, "
                "bypass, spatial split), under the exact model (Timeloop v3.0.3 semantics); latency, energy "
                "and power caps are not used (dropping them keeps it a bound)")


def supports(objective: Objective) -> bool:
    return objective in BOUNDED_OBJECTIVES


def _split_variable(box: HardwareBox, to_points: bool = False) -> str | None:
    """The widest variable in log terms that can still be split, or None for an unsplittable box.

    Sizes are split down to a ratio of :data:`LEAF_SIZE_RATIO`, or to single points with ``to_points``.
    """
    widths = box.widths()
    candidates = {k: w for k, w in widths.items() if (w > 0 if k in ("mesh_x", "mesh_y") or to_points else
                                                      w > math.log(LEAF_SIZE_RATIO))}
    if not candidates:
        return None
    return max(candidates, key=lambda k: (candidates[k], k))


def template_points(template: ArchTemplate) -> int:
    """How many hardware points the template has (mesh sides times every size range)."""
    count = (template.mesh_x_range[1] - template.mesh_x_range[0] + 1) * (template.mesh_y_range[1]
                                                                        - template.mesh_y_range[0] + 1)
    for _, lo, hi in template.size_ranges:
        count *= hi - lo + 1
    return count


def branch_and_bound(network: Network, template: ArchTemplate, objective: Objective, area_budget_mm2: float | None,
                     *, incumbent: float | None = None, time_limit_s: float = 60.0,
                     rel_tol: float = DEFAULT_REL_TOL, max_nodes: int | None = None,
                     latency_cap_s: float | None = None, progress: bool = False,
                     exact_leaves: bool | None = None, exact_leaf_time_s: float = EXACT_LEAF_TIME_S,
                     on_least: Callable[[HardwareBox], None] | None = None) -> BoundResult:
    """Best-first branch-and-bound; see the module docstring. ``incumbent``: the best design's objective.

    ``on_least`` is called before each step with the box holding the least bound so far (an open
    one, or the unsplittable one once its bound is the least): where the relaxation is most
    optimistic, which polishing screens (:class:`search.refine.BoundHint`).

    With ``exact_leaves`` (default: templates of at most :data:`EXACT_LEAF_POINTS` points) boxes are
    split down to single hardware points, and a single point's bound is the exact optimum there
    (:func:`search.exact_leaf.exact_point_value`, at most ``exact_leaf_time_s`` per point) whenever
    the exact mapper proves every layer in time; that value is also a design's, so it lowers the
    pruning threshold, and the best of them is returned as ``leaf_optimum`` (``gap`` stays the
    given ``incumbent``'s).
    """
    t0 = time.monotonic()
    if exact_leaves is None:
        exact_leaves = template_points(template) <= EXACT_LEAF_POINTS
    model = NodeModel(network, template, objective, area_budget_mm2, latency_cap_s)
    root = HardwareBox.of_template(template)
    best = math.inf if incumbent is None else incumbent
    threshold = best / (1 + rel_tol)
    heap: list[tuple[float, int, HardwareBox]] = []
    closed = math.inf  # smallest bound of pruned or unsplittable nodes
    closed_box = None
    counter = exact = 0  # nodes solved; exact leaves
    tie = itertools.count()  # heap order among equal bounds: first pushed first
    leaf_best = math.inf
    bar = _progress_bar(progress, time_limit_s)
    try:
        value = model.solve(root).value
        counter += 1
        heapq.heappush(heap, (value, next(tie), root))
        while heap:
            if time.monotonic() - t0 > time_limit_s or (max_nodes is not None and counter >= max_nodes):
                break
            value, _, box = heap[0]
            if on_least is not None:
                on_least(closed_box if closed_box is not None and closed <= value else box)
            if value >= threshold:
                break  # best first: every open node is pruned
            if STOP_AT_FINAL and closed <= value:
                break  # the least bound is an unsplittable node's: final (module docstring)
            heapq.heappop(heap)
            name = _split_variable(box, exact_leaves)
            if name is None:
                if exact_leaves and math.isfinite(value):
                    point = _exact_leaf(model, box, objective, min(t0 + time_limit_s, time.monotonic()
                                                                   + exact_leaf_time_s))
                    if point is not None:
                        exact += 1
                        value = max(value, point)
                        leaf_best = min(leaf_best, point)
                        if point < best:
                            best, threshold = point, point / (1 + rel_tol)
                if value < closed:
                    closed, closed_box = value, box
                continue
            for child in box.split(name):
                if time.monotonic() - t0 > time_limit_s:
                    bound = value  # no time left to solve it: its parent's bound covers it
                else:
                    bound = model.solve(child).value
                    counter += 1
                if bound >= threshold:
                    if bound < closed:
                        closed, closed_box = bound, child
                    continue
                heapq.heappush(heap, (bound, next(tie), child))
            if bar is not None:
                bar.update(min(time.monotonic() - t0, time_limit_s) - bar.n)
                bar.set_postfix_str(f"bound {min(heap[0][0] if heap else math.inf, closed):.4g}")
    finally:
        if bar is not None:
            bar.close()
    open_best = heap[0][0] if heap else math.inf
    lower = min(open_best, closed)
    best_box = heap[0][2] if heap and open_best <= closed else closed_box
    complete = not heap or heap[0][0] >= threshold or closed <= heap[0][0]
    gap = None
    if incumbent is not None and math.isfinite(lower) and lower > 0:
        gap = max(0.0, incumbent / lower - 1)
    return BoundResult(lower, incumbent, gap, rel_tol, counter, len(heap), time.monotonic() - t0, complete, best_box,
                       exact, leaf_best if math.isfinite(leaf_best) else None)


def _exact_leaf(model: NodeModel, box: HardwareBox, objective: Objective, deadline: float) -> float | None:
    """The exact optimum at a single-point box (see :func:`branch_and_bound`), or None if not proven in time."""
    from search.exact_leaf import exact_point_value

    hw = box.smallest_hardware()
    return exact_point_value(model.network, model.template.instantiate(hw), objective, deadline=deadline,
                             latency_cap_s=model.latency_cap_s)


def _progress_bar(progress: bool, time_limit_s: float):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=time_limit_s, desc="lower bound", unit="s", file=sys.stderr, leave=False,
                disable=not sys.stderr.isatty(), bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")


def attach_bound(doc: dict, network: Network, template: ArchTemplate, goal, *, time_limit_s: float,
                 max_nodes: int | None = None, rel_tol: float = DEFAULT_REL_TOL, progress: bool = False) -> BoundResult | None:
    """Add the lower bound and gap to a ``result.json`` document; the status is ``optimal`` only within ``rel_tol``.

    ``doc["totals"]`` (the best design's totals, or None) gives the incumbent. A gap proven within
    ``rel_tol`` makes any run with a design ``optimal``; otherwise the search's own status
    (``converged``, ``time_limit``, ...) stays. Objectives without a bound
    (power) and ``time_limit_s <= 0`` record why there is no bound. With ``max_nodes`` reached before
    ``time_limit_s`` the result depends on nothing but the inputs.
    """
    totals = doc.get("totals")
    incumbent = None
    if totals is not None and totals.get("feasible"):
        key = {Objective.EDP: "edp", Objective.ENERGY: "energy_pJ", Objective.LATENCY: "latency_s"}.get(goal.objective)
        incumbent = None if key is None else totals[key]
    result = None
    if not supports(goal.objective):
        doc.update({"lower_bound": None, "gap": None,
                    "bound": {"covers": f"no bound: objective {goal.objective.value} is not bounded "
                                        f"(only {', '.join(o.value for o in BOUNDED_OBJECTIVES)})",
                              "gap_tolerance": rel_tol}})
    elif time_limit_s <= 0:
        doc.update({"lower_bound": None, "gap": None,
                    "bound": {"covers": "no bound: --bound-time 0", "gap_tolerance": rel_tol}})
    else:
        result = branch_and_bound(network, template, goal.objective, goal.area_budget_mm2, incumbent=incumbent,
                                  time_limit_s=time_limit_s, max_nodes=max_nodes, rel_tol=rel_tol,
                                  progress=progress)
        doc.update(result.document())
    if result is not None and result.optimal and totals is not None:
        doc["status"] = "optimal"
    return result


def power_band(front_doc: dict, network: Network, template: ArchTemplate, area_budget_mm2: float | None, *,
               time_limit_s: float, max_nodes: int | None = None) -> None:
    """Give every point of a ``result.json`` Pareto front its own power bound (a band under the front).

    A design at least as fast as a point (latency ``T <= T_p``) spends energy ``E >= E_lb(T_p)``,
    the energy bound with the latency cap ``T_p`` (:func:`branch_and_bound`, ``latency_cap_s``), so
    its power ``E / T >= E_lb(T_p) / T_p``. Each point gets ``power_lower_bound_mW`` and
    ``power_gap`` (its power over that bound, minus 1); the budget is split over the points.
    """
    points = front_doc.get("points", [])
    for p in points:
        result = branch_and_bound(network, template, Objective.ENERGY, area_budget_mm2,
                                  time_limit_s=time_limit_s / max(len(points), 1), max_nodes=max_nodes,
                                  latency_cap_s=p["latency_s"])
        bound = result.lower_bound / p["latency_s"] * MW_PER_PJ_PER_S if math.isfinite(result.lower_bound) else None
        p["power_lower_bound_mW"] = bound
        p["power_gap"] = None if not bound else max(0.0, p["power_mW"] / bound - 1)
