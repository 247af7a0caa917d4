"""The cheapest chain of keepers of one tensor, compiled: the dynamic program of the partial-tiling bounds.

A tensor's words travel from the outermost level 0 to the MACs (level ``n - 1`` of the cost table)
through a chain of keeping levels ``0 = c_0 < c_1 < ... < c_m = n - 1``; ``cost[p, c]`` bounds what
the tensor spends between a keeping parent ``p`` and the next keeping level ``c`` (``inf`` where
``p`` may not keep it). The cheapest chain is the shortest path in that acyclic graph:

    best[0] = 0,    best[c] = min_{p < c} (best[p] + cost[p, c]),    answer = best[n - 1].

A variant takes some columns ``c`` (the levels whose innermost loop is forced, :mod:`search.mapper.bounds`,
"Innermost loop") from a second table ``full`` instead.

The tables are small (``n`` is the number of levels plus one) and many (one per partial tiling,
split key and forced-loop variant), so the recursion runs in one compiled pass over all of them.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _chains(cost: np.ndarray, full: np.ndarray, take_full: np.ndarray) -> np.ndarray:  # pragma: no cover
    m, n = cost.shape[0], cost.shape[1]
    out = np.empty(m)
    best = np.empty(n)
    for i in range(m):
        best[0] = 0.0
        for c in range(1, n):
            v = np.inf
            for p in range(c):
                x = best[p] + (full[i, p, c] if take_full[c] else cost[i, p, c])
                if x < v:
                    v = x
            best[c] = v
        out[i] = best[n - 1]
    return out


def cheapest_chains(cost: np.ndarray, full: np.ndarray | None = None, columns=()) -> np.ndarray:
    """``best[n - 1]`` of the module docstring's recursion for every table ``cost[..., p, c]`` (any
    leading axes, e.g. ``[b, key]``), the ``columns`` taken from ``full`` (same shape)."""
    n = cost.shape[-1]
    flat = np.ascontiguousarray(cost, dtype=np.float64).reshape(-1, n, n)
    take_full = np.zeros(n, dtype=np.bool_)
    take_full[list(columns)] = True
    other = flat if full is None or not take_full.any() else \
        np.ascontiguousarray(full, dtype=np.float64).reshape(-1, n, n)
    return _chains(flat, other, take_full).reshape(cost.shape[:-2])


def warm_up() -> float:
    """Compile the kernel (or load it from Numba's cache); the seconds it took. ``make install`` runs
    this once, so that parallel workers only load the cache (Numba's cache can break when several
    processes write it at once)."""
    import time

    start = time.perf_counter()
    cheapest_chains(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), (1,))
    return time.perf_counter() - start
