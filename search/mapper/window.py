"""A windowed input's multicast and distinct children: the window terms of :mod:`search.mapper.bounds`.

``bm`` is the :class:`search.mapper.bounds.BoundModel` of the layer (its ``levels``, ``dims``,
``proj``, ``window_axes`` and ``window_pairs``).
"""

from __future__ import annotations

import numpy as np

from formulation.axes import DIMS, Dim, Tensor
from search.mapper.splits import TensorKeys


def window_mac_words(bm, s: np.ndarray, free: np.ndarray, cap_below: np.ndarray, keys: TensorKeys,
                     t: np.ndarray | None = None) -> np.ndarray:
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
    term rises with both); with both assigned and the temporal factors ``t`` given, at most
    :func:`grid_multicast`.
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
        elif t is not None and len(pair) == 2 and len(bm.fan_levels) == 1:
            term = np.minimum(term, grid_multicast_free(bm, s, t, pair, bm.window_axes[ai], None, keys.win[:, ai]))
        if len(pair) == 2 and len(fixed) == 2:
            share = sumset_multicast(below[:, :, pair[0]], below[:, :, pair[1]])
            if t is not None:
                share = np.minimum(share, grid_multicast(bm, s, t, pair, bm.window_axes[ai]))
            term = np.minimum(term, share[:, None, :])
        elif len(pair) == 2 and len(fixed) == 1:  # the free one's S_d is at most its z (keys.win)
            term = np.minimum(term, sumset_multicast(below[:, None, :, fixed[0]], keys.win[None, :, None, ai]))
            if t is not None and len(bm.fan_levels) == 1:
                term = np.minimum(term, grid_multicast_free(bm, s, t, pair, bm.window_axes[ai], fixed[0], keys.win[:, ai]))
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


def grid_multicast(bm, s: np.ndarray, t: np.ndarray, pair: list[int], axis: int) -> np.ndarray:
    """``[b, L]``: MACs per distinct input coordinate along window ``axis`` (moved by the two dimensions
    ``pair``, both assigned) under one instance of each parent ``p``, exact where the pair's spatial
    factors in the levels ``p .. L-1`` sit at one fanout level ``m``; :func:`sumset_multicast` elsewhere.

    At one step the MACs under ``p`` hold every pair ``(i, j)`` of the two dimensions' spatial indices
    at ``m`` (``n = s_{m,1}``, ``k = s_{m,2}``; no other level in ``p .. L-1`` spreads them) and read
    the coordinates ``c0 + a i + b j``, with steps ``a = A_1 E_1``, ``b = A_2 E_2`` (``A`` the
    projection's coefficients, stride and dilation; ``E_d = prod_{l > m} t_{l,d}`` the extent each
    spatial index covers, the temporal indices below being common to all). With ``g = gcd(a, b)``,
    ``a' = a / g``, ``b' = b / g``: ``a i + b j = a i' + b j'`` iff ``i - i'`` is a multiple of
    ``b'`` and ``j' - j`` the same multiple of ``a'``, so each pair with ``i >= b'`` and ``j < k - a'``
    repeats the coordinate of ``(i - b', j + a')`` and every other pair is the first of its
    coordinate: ``n k - max(0, n - b') max(0, k - a')`` distinct coordinates (``n + k - 1`` for
    ``a' = b' = 1``). The MACs per coordinate are ``n k`` over that."""
    L = bm.levels
    b_rows = s.shape[0]
    d1, d2 = pair
    c1, c2 = int(bm.proj[Tensor.I, axis, d1]), int(bm.proj[Tensor.I, axis, d2])
    below = np.cumprod(s[:, ::-1], axis=1)[:, ::-1]
    out = sumset_multicast(below[:, :, d1], below[:, :, d2])
    spread = (s[:, :, d1] > 1) | (s[:, :, d2] > 1)                            # [b, L]
    inner = np.concatenate([np.cumprod(t[:, ::-1], axis=1)[:, ::-1][:, 1:], np.ones((b_rows, 1, t.shape[2]))],
                           axis=1)                                             # prod_{l > m} t_{l,d}
    for p in range(L):
        levels = spread[:, p:]
        one = levels.sum(axis=1) == 1
        if not one.any():
            continue
        m = p + np.argmax(levels, axis=1)
        r = np.arange(b_rows)
        n, k = s[r, m, d1], s[r, m, d2]
        a = (c1 * inner[r, m, d1]).astype(np.int64)
        b = (c2 * inner[r, m, d2]).astype(np.int64)
        out[:, p] = np.where(one, _grid_share(n.astype(np.int64), k.astype(np.int64), a, b), out[:, p])
    return out


def _grid_share(n: np.ndarray, k: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``n k`` over the distinct values of ``a i + b j`` (``i < n``, ``j < k``; :func:`grid_multicast`)."""
    g = np.gcd(a, b)
    a1, b1 = a // g, b // g
    return n * k / (n * k - np.maximum(0, n - b1) * np.maximum(0, k - a1))


def _placements(D: int):
    """Every ``(k, E)`` with ``k E`` dividing ``D``: a free dimension's spatial indices at the one fanout
    and the extent each covers below it."""
    return [(k, e) for k in range(1, D + 1) if D % k == 0 for e in range(1, D // k + 1) if (D // k) % e == 0]


def grid_multicast_free(bm, s: np.ndarray, t: np.ndarray, pair: list[int], axis: int, fixed: int | None,
                        win: np.ndarray) -> np.ndarray:
    """``[b, key, L]``: :func:`grid_multicast` with one dimension of the pair free (``fixed`` the other) or
    both (``fixed`` None), on an architecture with one fanout level ``m`` (so both dimensions'
    spatial indices sit there): the largest share over every placement the free dimensions can take,
    ``k`` spatial indices at ``m`` and an extent ``E`` each (``k E`` dividing ``D``), with the least
    ``k`` of the free ones at most ``win[key]`` (the split's bound, :class:`search.mapper.splits.TensorKeys`);
    ``1`` for a parent below ``m`` (no spread pair under it). Every completion takes one of these
    placements, so its share is at most the largest."""
    L = bm.levels
    m = int(bm.fan_levels[0])
    b_rows = s.shape[0]
    win = np.asarray(win)[None, :]
    c = [int(bm.proj[Tensor.I, axis, d]) for d in pair]
    options = []                                              # per dimension: [(k [b], step [b], free)]
    for d, cd in zip(pair, c):
        if d == fixed:
            k = s[:, m, d].astype(np.int64)
            options.append([(k, (cd * np.prod(t[:, m + 1:, d], axis=1)).astype(np.int64), False)])
        else:
            options.append([(np.full(b_rows, k), np.full(b_rows, cd * e), True)
                            for k, e in _placements(int(bm.dims[d]))])
    best = np.ones((b_rows, win.shape[1]))
    for k1, a, f1 in options[0]:
        for k2, b, f2 in options[1]:
            least = np.minimum(np.where(f1, k1, np.inf), np.where(f2, k2, np.inf))        # the free ones' least k
            share = _grid_share(k1, k2, a, b)
            best = np.maximum(best, np.where(win >= least[:, None], share[:, None], 1.0))
    out = np.ones((b_rows, win.shape[1], L))
    out[:, :, :m + 1] = best[:, :, None]
    return out


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


__all__ = ["grid_multicast", "grid_multicast_free", "sumset_multicast", "window_children", "window_mac_words"]
