"""Per-instance compulsory traffic of a windowed input: what each keeper instance must receive.

:mod:`search.mapper.bounds` bounds a windowed input's traffic between consecutive keepers ``p``
and ``c < L`` by ``REL SI Lambda W_c`` (``REL`` only N and C: the window loops above ``c`` may
bring slabs, not whole tiles) and by the layer's compulsory traffic ``|I|``. Neither sees that
when the window dimensions are spread over the PEs above ``c``, every instance of ``c`` needs its
own, overlapping, part of the input: on MobileNetV2's depthwise layers on ``eyeriss-like``, with
R and S spread over 9 PEs (the Outputs then reduce spatially and reach DRAM straight from the
MACs), the inputs could go from DRAM straight into the 12-word ``ifmap_spad`` at their compulsory
traffic; the exact model reads 5.6 times that from DRAM (the best mapping keeps the inputs in the
global buffer instead). :func:`instance_floors` adds that floor, per group.

**Claim.** Fix a mapping, a windowed input's pair ``(p, c)`` of consecutive keepers with ``c < L``
and no fanout at level ``c - 1`` (links at a fanout onto ``c`` may serve a child from a
neighbour; :mod:`formulation.model.links`: only the fanout's direct child links). With
``S_d = prod_{m<c} s_{m,d}``, ``S'_d = prod_{p<=m<c} s_{m,d}`` (so ``S_d = S_d^{<p} S'_d``), and
per input axis ``a`` the dimensions moving it (one, or a window pair ``d1, d2``)::

    fills_c >= F = S_K * prod_{single axes} D_d * prod_{pairs} phi_a,
        phi_a = S_1 S_2 (D_1 / S_1 + D_2 / S_2 - 1) = D_1 D_2 - (D_1 - S_1)(D_2 - S_2),
    reads_p >= F / (S'_K prod_{pairs} mu_a),   mu_a = S'_1 S'_2 / (S'_1 + S'_2 - 1).

*Proof.* An instance ``i`` of ``c`` has the MACs under it perform, per dimension ``d``, a set of
``D_d / S_d`` distinct values (perfect factors: the spatial indices at the levels ``< c`` are
fixed for ``i``, the other loops enumerate the rest). Along an axis moved by ``d1`` and ``d2``
its MACs read the coordinates ``{A_1 v_1 + A_2 v_2}``, a sumset of two sets of distinct values,
which has at least ``D_1 / S_1 + D_2 / S_2 - 1`` elements (``|A + B| >= |A| + |B| - 1``, see
:func:`search.mapper.window.sumset_multicast`); along an axis moved by one dimension, ``D_d /
S_d``; every dimension moves one axis (K none), so the coordinates ``U_i`` the MACs under ``i``
read number at least the product. Every such word passes through ``i`` (``c`` keeps the input;
the MACs under ``i`` are served by ``i``'s subtree), and its first arrival into ``i`` is one of
``i``'s arrivals (the model's deltas compare each tile with an earlier one, so a word new to
``i`` is in its delta; without links nothing else delivers it): ``a_c >= |U_i|``. The model's
fills are ``n_c a_c`` with ``n_c = prod_d S_d``, which gives ``F`` (``S_d`` cancels on the
single axes). Its parent reads are ``n_p X a_c`` (:func:`formulation.model.exact.access_counts`),
``n_p = prod_d S_d^{<p}``, ``X`` the distinct children offsets (:func:`formulation.model.nest.distinct_children`):
at least ``S'_d`` per single axis (one dimension's indices give distinct offsets), at least
``S'_1 + S'_2 - 1`` per window axis (per fanout a sumset of the two dimensions' offsets; the
product over fanouts is at least the sum of the products less one, as in ``sumset_multicast``),
1 for K. So ``reads_p >= n_p X F / n_c = F prod_a X_a / prod_d S'_d``, which is the claim.

*Partial tilings.* ``phi_a`` rises with ``S_1`` and ``S_2`` (``D >= S``), ``F`` with ``S_K``, and
``mu_a`` with ``S'_1`` and ``S'_2`` (it is ``min``-like: ``1 / mu = 1 / S'_1 + 1 / S'_2 - 1 / (S'_1
S'_2)``, each term falling as its factor grows, the sum falling since ``1 / S'_2 <= 1``). So lower
bounds on ``S`` and upper bounds on ``S'`` give a floor for every completion: a free dimension's
``S_d >= max(1, z_d / prod_{m>=c} cap_m)`` (its free factors at levels ``>= c`` multiply to at most
the fanout left there), with ``z_d`` at least the split key's least ``z`` over its pair's free
dimensions (:attr:`search.mapper.splits.TensorKeys.win_lo`; 1 without a split) and ``S_K`` at
least its assigned part; ``S'_d <= min(z_d, prod_{p<=m<c} cap_m)``, and the least ``S'`` of a
pair with both dimensions free is at most the key's ``win`` (the least ``z``), which bounds
``mu_a <= min(S'_1, S'_2)``; with one free, ``mu_a`` takes the fixed one's ``S'`` and the free
one's bound. ``S_K / S'_K = S_K^{<p}``: the floor on the reads takes its assigned part (free
factors at 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from formulation.axes import DIMS, N_AXES, Dim, Tensor
from search.mapper.splits import TensorKeys
from search.mapper.window import sumset_multicast

if TYPE_CHECKING:
    from search.mapper.bounds import BoundModel

#: Whether a windowed input's pairs are raised to the per-instance floor (module docstring); off is
#: weaker, still valid.
INSTANCE_UNION = True


def instance_floors(bm: BoundModel, s: np.ndarray, free: np.ndarray, cap_below: np.ndarray,
                    keys: TensorKeys) -> tuple[dict, dict] | None:
    """``(fills, reads)`` of a windowed input per group (module docstring): ``fills[c]`` and
    ``reads[(p, c)]``, ``[b, key]``, for the levels ``c < L`` that can keep the input, have a fanout
    above them and none at ``c - 1`` (elsewhere no floor is claimed: links, or, with every spatial
    factor above ``c`` at 1, nothing beyond the compulsory traffic); ``None`` when there is no such
    level or no window. ``s`` the spatial factors ``[b, L, 7]`` (free dimensions at 1),
    ``cap_below[b, L + 1]`` the fanout left at and below each level."""
    levels = [c for c in range(1, bm.levels) if bm.hw_keeps[c, Tensor.I] and bm.fan_x[c - 1] * bm.fan_y[c - 1] == 1
              and (bm.fan_x[:c] * bm.fan_y[:c] > 1).any()]
    if not (INSTANCE_UNION and bm.window_axes and levels):
        return None
    b, n_keys = s.shape[0], keys.count
    free = np.asarray(free, dtype=bool)
    dims = bm.dims.astype(np.float64)
    above = np.concatenate([np.ones((b, 1, len(DIMS))), np.cumprod(s, axis=1)], axis=1)   # S_d^{<m}, [b, L+1, 7]
    win_lo = keys.win_lo if keys.win_lo is not None else np.ones_like(keys.win)
    pair_of = {d: ai for ai, pair in enumerate(bm.window_pairs) for d in pair}
    axes = [[int(d) for d in DIMS if bm.proj[Tensor.I, a, d] != 0] for a in range(N_AXES)]
    fills, reads = {}, {}
    for c in levels:
        lo = {}   # lower bounds on S_d (levels < c), [b, key]
        for d in DIMS:
            if not free[d]:
                lo[d] = np.broadcast_to(above[:, c, d][:, None], (b, n_keys))
            elif d in pair_of:
                z = np.where(np.isfinite(win_lo[:, pair_of[d]]), win_lo[:, pair_of[d]], 1.0)
                lo[d] = np.maximum(1.0, z[None, :] / cap_below[:, c][:, None])
            else:
                lo[d] = np.ones((b, n_keys))
        base = np.ones((b, n_keys))                                   # F / S_K
        for dd in axes:
            if len(dd) == 1:
                base = base * dims[dd[0]]
            elif len(dd) == 2:
                d1, d2 = dd
                s1, s2 = np.minimum(lo[d1], dims[d1]), np.minimum(lo[d2], dims[d2])
                base = base * (dims[d1] * dims[d2] - (dims[d1] - s1) * (dims[d2] - s2))
            else:
                base = base * max(dims[d] for d in dd)  # not a convolution's input: the largest extent
        fills[c] = base * lo[int(Dim.K)]
        for p in range(c):
            fan = cap_below[:, p] / cap_below[:, c]                   # fanout left on levels p..c-1, [b]
            mu = np.ones((b, n_keys))
            for ai, pair in enumerate(bm.window_pairs):
                if len(pair) != 2:
                    mu = mu * np.inf
                    continue
                fixed = [d for d in pair if not free[d]]
                up = lambda d: np.broadcast_to((above[:, c, d] / above[:, p, d])[:, None], (b, n_keys))  # noqa: E731
                w = np.minimum(keys.win[None, :, ai], fan[:, None])
                if len(fixed) == 2:
                    mu = mu * sumset_multicast(up(pair[0]), up(pair[1]))
                elif len(fixed) == 1:
                    mu = mu * sumset_multicast(up(fixed[0]), np.maximum(w, 1.0))
                else:
                    mu = mu * np.maximum(w, 1.0)
            k_above = np.broadcast_to((above[:, p, Dim.K])[:, None], (b, n_keys))
            reads[(p, c)] = base * k_above / mu
    return fills, reads


__all__ = ["INSTANCE_UNION", "instance_floors"]
