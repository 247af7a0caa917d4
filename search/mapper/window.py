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
    the window dimensions. With at most one of a pair's two dimensions free, its term is also at
    most :func:`sumset_multicast` of ``S_1`` and ``S_2`` (the free one's at ``keys.win``: the
    term rises with both).
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
        if len(pair) == 2 and len(fixed) == 2:
            term = np.minimum(term, sumset_multicast(below[:, None, :, fixed[0]], below[:, None, :, fixed[1]]))
        elif len(pair) == 2 and len(fixed) == 1:  # the free one's S_d is at most its z (keys.win)
            term = np.minimum(term, sumset_multicast(below[:, None, :, fixed[0]], keys.win[None, :, None, ai]))
        divisor *= term
        dims_used += pair
    used = np.zeros(len(DIMS), dtype=bool)
    used[dims_used] = True
    assigned_part = np.where((used & ~free)[None, None, :], below, 1.0).prod(axis=2)
    divisor = np.minimum(divisor, (assigned_part * cap_below[:, :L])[:, None, :])
    return macs / divisor


def sumset_multicast(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """An upper bound on the MACs per distinct input coordinate along one window axis whose two dimensions
    have ``s1`` and ``s2`` spatial indices below a parent: ``s1 s2 / (s1 + s2 - 1)`` (at most ``min(s1, s2)``).

    The MACs under one instance of the parent at one step hold every pair of the two dimensions'
    spatial indices (the fanouts' spatial loops form a full grid), and read along the axis the
    coordinates ``A + B = {a + b}``, ``A`` the ``s1`` distinct offsets of the first dimension's
    indices (``stride`` or ``dilation`` times its coordinate: distinct, since every step is
    positive and the levels nest) and ``B`` the ``s2`` of the second. For finite sets of reals
    ``|A + B| >= |A| + |B| - 1`` (list ``A`` and ``B`` increasingly: ``a_1 + b_1 < a_1 + b_2 < ...
    < a_1 + b_{|B|} < a_2 + b_{|B|} < ... < a_{|A|} + b_{|B|}`` are distinct). Through several fanouts
    the model multiplies each fanout's own count (:func:`formulation.model.nest.distinct_children`), and
    ``prod_k (a_k + b_k - 1) >= prod_k a_k + prod_k b_k - 1`` for ``a_k, b_k >= 1`` (with ``u = a - 1``,
    ``v = b - 1``: ``(u_1 + v_1)(u_2 + v_2) >= u_1 u_2 + v_1 v_2``), so the count is at least ``s1 + s2 -
    1`` either way, and the ``s1 s2`` index pairs share at most ``s1 s2 / (s1 + s2 - 1)`` MACs per
    coordinate: in :func:`window_mac_words` this replaces ``min(s1, s2)``, which allows one coordinate
    per ``min(s1, s2)`` index pairs (measured on MobileNetV2's depthwise layers on eyeriss-like, whose
    P 4 and R 3 on one axis share a coordinate between 2 MACs, not 3: the inputs read straight from
    DRAM into the MACs were priced at their compulsory traffic, 4% below the best mapping)."""
    return s1 * s2 / (s1 + s2 - 1)


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


__all__ = ["sumset_multicast", "window_children", "window_mac_words"]
