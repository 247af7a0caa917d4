"""A windowed input's multicast and distinct children: the window terms of :mod:`search.mapper.bounds`.

``bm`` is the :class:`search.mapper.bounds.BoundModel` of the layer (its ``levels``, ``dims``,
``proj``, ``window_axes`` and ``window_pairs``).
"""

from __future__ import annotations

import numpy as np

from formulation.axes import DIMS, Dim, Tensor
from search.mapper.splits import TensorKeys


def window_mac_words(bm, s: np.ndarray, free: np.ndarray, cap_below: np.ndarray, keys: TensorKeys) -> np.ndarray:
    """Reads of a windowed input by a parent ``p`` feeding the MACs, ``[b, key, L]``.

    ``n_p X(p, L) compute``: with ``S_d = prod_{m>=p} s_{m,d}``, ``n_p compute = prod_d D_d / S_d``
    and ``X >= prod_{d in N, C} S_d * prod_{window axes} max(S_1, S_2)``, so the reads are at
    least ``MACs / (S_K prod_axes min(S_1, S_2))``. A free dimension's ``S_d`` is at most its
    total spatial product ``z_d``: at most ``keys.zk`` for K, and the least over a window
    pair's free dimensions at most ``keys.win`` (``D_d`` without the split); and the free
    ones together at most the fanout left, ``prod_{m>=p} cap_m``; so the divisor is at most
    ``min(ub(S_K) prod_axes min(ub(S_1), ub(S_2)), prod_assigned S * cap)`` over ``K`` and
    the window dimensions.
    """
    L = bm.levels
    macs = float(np.prod(bm.dims))
    below = np.cumprod(s[:, ::-1], axis=1)[:, ::-1]                       # S_d for p = 0..L-1: [b, L, 7]
    if free[Dim.K]:
        divisor = np.broadcast_to(keys.zk[None, :, None], (s.shape[0], keys.count, L)).copy()
    else:
        divisor = np.broadcast_to(below[:, None, :, Dim.K], (s.shape[0], keys.count, L)).copy()
    dims_used = [int(Dim.K)]
    for ai, pair in enumerate(bm.window_pairs):
        term = np.broadcast_to(keys.win[None, :, None, ai], divisor.shape)
        fixed = [d for d in pair if not free[d]]
        if fixed:
            term = np.minimum(term, below[:, None, :, fixed].min(axis=-1))
        divisor *= term
        dims_used += pair
    used = np.zeros(len(DIMS), dtype=bool)
    used[dims_used] = True
    assigned_part = np.where((used & ~free)[None, None, :], below, 1.0).prod(axis=2)
    divisor = np.minimum(divisor, (assigned_part * cap_below[:, :L])[:, None, :])
    return macs / divisor

def window_children(bm, s: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``[b, p, c]``: a lower bound on the distinct input offsets along the window axes among the
    children of one instance of ``p`` on fanouts ``p..c-1``: per window axis, the largest
    ``prod_{p<=m<c} s_{m,d}`` of one assigned dimension ``d`` moving it (varying one dimension's
    spatial indices, nested across levels, gives that many distinct offsets)."""
    L = bm.levels
    b = s.shape[0]
    out = np.ones((b, L + 1, L + 1))
    for p in range(L):
        acc = np.ones((b, len(DIMS)))
        for c in range(p + 1, L + 1):
            acc = acc * s[:, c - 1]
            x = np.ones(b)
            for a in bm.window_axes:
                dims = (bm.proj[Tensor.I, a] != 0) & ~free
                if dims.any():
                    x = x * acc[:, dims].max(axis=1)
            out[:, p, c] = x
    return out


__all__ = ["window_children", "window_mac_words"]
