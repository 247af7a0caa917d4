"""Pareto dominance, the one definition every front in the project uses.

All objectives are minimized. A point ``k`` *weakly dominates* ``p`` within a relative tolerance
``rel_tol`` when ``k_j (1 - rel_tol) <= p_j`` for every objective ``j`` (``rel_tol = 0``: ``k <= p``
componentwise; meant for positive values such as latency and power).

:func:`non_dominated` sorts the points lexicographically (stably, so among equal points the first
given comes first) and keeps a point when no point kept before it weakly dominates it. With
``rel_tol = 0`` this is exactly the set of points no other point strictly dominates, one per
distinct point: a point that strictly dominates ``p`` is lexicographically smaller, so it (or a
kept point that weakly dominates it, by transitivity) is met before ``p``. With ``rel_tol > 0`` a
point whose every objective is within the tolerance of an earlier kept point's is dropped as
well (the ε-dominance of the sweeps). Rows with a non-finite value are never kept.

:func:`hypervolume_2d` is the area of the region that a set of 2-D points dominates inside the
reference box ``(-inf, ref]``, by horizontal strips: walking the points by increasing first
objective, each point lower than every point before it adds the strip between its second
objective and the lowest one so far. Dominated points add nothing, so the input need not be a
front. Points outside the box are ignored.

Search fronts (:mod:`search.pareto`), relaxed sweeps (:mod:`formulation.relaxed.sweep`), the
baselines' archive (:class:`search.baselines.space.ParetoArchive`) and the benchmarks use these two.
"""

from __future__ import annotations

import numpy as np


def non_dominated(points, rel_tol: float = 0.0) -> np.ndarray:
    """Indices of the non-dominated rows of ``points`` ``[n, k]`` (module docstring), in lexicographic order.

    Ties keep the first row given; non-finite rows are dropped. The indices come in increasing
    order of the first objective (then the second, ...); sort them to get input order.
    """
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.zeros(0, dtype=np.int64)
    pts = pts.reshape(len(pts), -1)
    order = np.lexsort(pts.T[::-1])  # stable: equal rows keep their input order
    if pts.shape[1] == 2 and rel_tol == 0.0:
        return _non_dominated_2d(pts, order)
    kept: list[int] = []
    for i in order:
        p = pts[i]
        if not np.all(np.isfinite(p)):
            continue
        if kept and np.any(np.all(pts[kept] * (1.0 - rel_tol) <= p, axis=1)):
            continue
        kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def _non_dominated_2d(pts: np.ndarray, order: np.ndarray) -> np.ndarray:
    """:func:`non_dominated` for two objectives without tolerance, in one sweep: walking the finite
    rows in lexicographic order, the kept points' second objectives decrease, so a row is weakly
    dominated by a kept one exactly when its second objective is not below the least seen so far."""
    order = order[np.isfinite(pts[order]).all(axis=1)]
    if order.size == 0:
        return order.astype(np.int64)
    second = pts[order, 1]
    least_before = np.concatenate([[np.inf], np.minimum.accumulate(second)[:-1]])
    return order[second < least_before].astype(np.int64)


def hypervolume_2d(points, ref: tuple[float, float]) -> float:
    """Area dominated by the 2-D ``points`` and bounded by ``ref`` (exact; module docstring)."""
    pts = sorted((float(x), float(y)) for x, y in np.asarray(points, dtype=float).reshape(-1, 2)
                 if x < ref[0] and y < ref[1])
    area, floor = 0.0, float(ref[1])
    for x, y in pts:
        if y < floor:
            area += (ref[0] - x) * (floor - y)
            floor = y
    return area


__all__ = ["hypervolume_2d", "non_dominated"]
