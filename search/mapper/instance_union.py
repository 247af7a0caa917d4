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
``S_d = prod_{m<c} s_{m,d}``, ``u_d = S_d^{<p} = prod_{m<p} s_{m,d}``, ``v_d = S'_d = prod_{p<=m<c}
s_{m,d}`` (so ``S_d = u_d v_d``), per input axis ``a`` the dimensions moving it (one, or a pair
``d1, d2`` with coefficients ``c_1, c_2``: stride and dilation) and ``N(n_1, n_2)`` the
:func:`sumset_size` of the pair (below, "Strides")::

    fills_c >= F = S_K * prod_{single axes} D_d * prod_{pairs} S_1 S_2 N(D_1 / S_1, D_2 / S_2),
    reads_p >= u_K * prod_{single axes} D_d * prod_{pairs} u_1 u_2 N(v_1, v_2) N(D_1 / S_1, D_2 / S_2).

*Proof.* An instance ``i`` of ``c`` has the MACs under it perform, per dimension ``d``, a set of
``D_d / S_d`` distinct values in ``[0, D_d)`` (perfect factors: the spatial indices at the levels
``< c`` are fixed for ``i``, the other loops enumerate the rest), every combination of them. Along
an axis moved by ``d1`` and ``d2`` its MACs read the coordinates ``{c_1 x_1 + c_2 x_2}``, at least
``N(D_1 / S_1, D_2 / S_2)`` of them; along an axis moved by one dimension, ``D_d / S_d``; every
dimension moves one axis (K none), so the coordinates ``U_i`` the MACs under ``i`` read number at
least the product. Every such word passes through ``i`` (``c`` keeps the input; the MACs under
``i`` are served by ``i``'s subtree), and its first arrival into ``i`` is one of ``i``'s arrivals
(the model's deltas compare each tile with an earlier one, so a word new to ``i`` is in its
delta; without links nothing else delivers it): ``a_c >= |U_i|``. The model's fills are ``n_c
a_c`` with ``n_c = prod_d S_d``, which gives ``F`` (``S_d`` cancels on the single axes). Its parent
reads are ``n_p X a_c`` (:func:`formulation.model.exact.access_counts`), ``n_p = prod_d u_d``, ``X``
the distinct children offsets (:func:`formulation.model.nest.distinct_children`), a product over
the axes: at least ``v_d`` per single axis (one dimension's indices give distinct offsets), 1 for
K, and per window axis the product over the fanouts ``p .. c - 1`` of each one's distinct
offsets, which is at least the number of distinct sums of one offset per fanout: the children's
offsets ``c_1 o_1 + c_2 o_2``, ``o_d`` taking ``v_d`` distinct values in ``[0, D_d)`` (the spatial
indices nest), so at least ``N(v_1, v_2)``. The single axes give ``u_d v_d D_d / S_d = D_d``.

**Strides** (:func:`sumset_size`). For ``A`` a set of ``n_1`` distinct integers in ``[0, D_1)``
and ``B`` one of ``n_2`` in ``[0, D_2)``: ``|c_1 A + c_2 B| >= n_1 + n_2 - 1`` (list both
increasingly: ``a_1 + b_1 < a_1 + b_2 < ... < a_1 + b_{n_2} < a_2 + b_{n_2} < ... `` are
distinct). With ``g = gcd(c_1, c_2)``, ``c_2 x ≡ c_2 x' (mod c_1)`` iff ``c_1 / g`` divides ``x - x'``,
so a residue class of ``c_2 B`` modulo ``c_1`` holds at most ``ceil(D_2 g / c_1)`` elements and ``B``
meets ``k_2 >= ceil(n_2 / ceil(D_2 g / c_1))`` classes. The sums with ``b`` in one class ``rho`` are
``rho + c_1 (a + y_b)``, ``y_b`` distinct integers, so they number at least ``n_1 + |B_rho| - 1``,
and sums of different classes differ modulo ``c_1``: ``|c_1 A + c_2 B| >= k_2 (n_1 - 1) + n_2``; the
same with the roles swapped gives ``k_1 (n_2 - 1) + n_1``. On a stride-2 3x3 layer an instance with
every R value and ``n`` P values reads ``2 n + 1`` columns, not ``n + 2`` (MobileNetV2's
``dw96_s2_56`` on ``eyeriss-like``: with it the 60-s search proves the optimum in 4 s, where it
stopped at a 3.6–4.2% gap; its partial tilings with the inputs straight from DRAM into the
``ifmap_spad`` were priced as if every PE's windows overlapped as at stride 1).

*Partial tilings.* A completion's ``S_d``, ``u_d`` and ``v_d`` are divisors of ``D_d``; an
assigned dimension has its own, a free one's satisfy ``S_d >= max(1, z_d / prod_{m>=c} cap_m)``
(its free factors at levels ``>= c`` multiply to at most the fanout left there), with ``z_d`` at
least the split key's least ``z`` over its pair's free dimensions
(:attr:`search.mapper.splits.TensorKeys.win_lo`; 1 without a split), ``u_d <= prod_{m<p} cap_m``,
``v_d <= prod_{p<=m<c} cap_m`` (both products over the free dimensions too, when both of a pair
are free), and the least ``v`` of a pair's free dimensions is at most the key's ``win`` (the least
``z``). Each pair's factor is the least over every choice of divisors meeting these (an
enumeration: the bounds of ``N`` need not rise with its arguments), and ``S_K`` and ``u_K`` take
their assigned part (free factors at 1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from formulation.axes import DIMS, N_AXES, Dim, Tensor
from search.mapper.splits import TensorKeys

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
    level or no window; 0 reads from a parent that cannot keep the input. ``s`` the spatial factors
    ``[b, L, 7]`` (free dimensions at 1), ``cap_below[b, L + 1]`` the fanout left at and below each level."""
    levels = [c for c in range(1, bm.levels) if bm.hw_keeps[c, Tensor.I] and bm.fan_x[c - 1] * bm.fan_y[c - 1] == 1
              and (bm.fan_x[:c] * bm.fan_y[:c] > 1).any()]
    if not (INSTANCE_UNION and bm.window_axes and levels):
        return None
    # the floors read only the spatial factors and the fanout left: computed once per distinct row
    sig = np.concatenate([s.reshape(s.shape[0], -1), cap_below], axis=1)
    _, first, inv = np.unique(sig @ np.random.default_rng(0).random(sig.shape[1]), return_index=True,
                              return_inverse=True)                   # a hash, checked below
    inv = inv.ravel()
    if not (sig[first][inv] == sig).all():
        first = inv = np.arange(len(sig))
    fills, reads = _floors(bm, levels, s[first], np.asarray(free, dtype=bool), cap_below[first], keys)
    return {c: v[inv] for c, v in fills.items()}, {pc: v[inv] for pc, v in reads.items()}


def _floors(bm: BoundModel, levels: list[int], s: np.ndarray, free: np.ndarray, cap_below: np.ndarray,
            keys: TensorKeys) -> tuple[dict, dict]:
    """:func:`instance_floors` at the levels ``levels``, for distinct rows."""
    b, n_keys = s.shape[0], keys.count
    above = np.concatenate([np.ones((b, 1, len(DIMS))), np.cumprod(s, axis=1)], axis=1)   # S_d^{<m}, [b, L+1, 7]
    win_lo = keys.win_lo if keys.win_lo is not None else np.ones_like(keys.win)
    axes = [[int(d) for d in DIMS if bm.proj[Tensor.I, a, d] != 0] for a in range(N_AXES)]
    single = np.ones(1)                                               # the single axes' part
    for dd in axes:
        if len(dd) == 1:
            single = single * float(bm.dims[dd[0]])
        elif len(dd) > 2:
            single = single * max(float(bm.dims[d]) for d in dd)      # not a convolution's input: the largest extent
    pairs = []                                                        # per pair axis: its dims, keys' (least z, win), key index
    for a, dd in enumerate(axes):
        if len(dd) != 2:
            continue
        if a in bm.window_axes:
            ai = bm.window_axes.index(a)
            z = np.where(np.isfinite(win_lo[:, ai]), win_lo[:, ai], 1.0)
            uniq, inv = np.unique(np.stack([z, keys.win[:, ai]], axis=1), axis=0, return_inverse=True)
        else:
            uniq, inv = np.array([[1.0, np.inf]]), np.zeros(n_keys, dtype=np.int64)
        pairs.append((a, dd, uniq, inv.ravel()))
    fills, reads = {}, {}
    for c in levels:
        k_lo = np.ones((b, 1)) if free[Dim.K] else above[:, c, Dim.K][:, None]
        fills[c] = np.broadcast_to(single * k_lo, (b, n_keys))
        lo = []                                                       # per pair: lower bounds on S_d (levels < c), [b, u]
        for a, dd, uniq, inv in pairs:
            lo.append(np.maximum(1.0, uniq[None, :, 0] / cap_below[:, c][:, None]))
            fills[c] = fills[c] * _pair_fills(bm, a, dd, above[:, c], free, lo[-1])[:, inv]
        for p in range(c):
            if any(len(dd) > 2 for dd in axes) or not bm.hw_keeps[p, Tensor.I]:
                reads[(p, c)] = np.zeros((b, n_keys))
                continue
            fans = (cap_below[:, 0] / cap_below[:, p], cap_below[:, p] / cap_below[:, c])   # left above p, on p..c-1
            out = np.broadcast_to(single * above[:, p, Dim.K][:, None], (b, n_keys))
            for (a, dd, uniq, inv), lo_a in zip(pairs, lo):
                out = out * _pair_reads(bm, a, dd, above[:, p], above[:, c], free, lo_a, fans, uniq[:, 1])[:, inv]
            reads[(p, c)] = out
    return fills, reads


def sumset_size(n1, n2, c1: int, c2: int, d1: int, d2: int):
    """A lower bound on ``|c1 A + c2 B|`` for sets ``A`` of ``n1`` distinct integers in ``[0, d1)`` and ``B``
    of ``n2`` in ``[0, d2)`` (``c1, c2 >= 1``; numbers or arrays): ``max(n1 + n2 - 1, k2 (n1 - 1) + n2,
    k1 (n2 - 1) + n1)``, ``k2 = ceil(n2 / ceil(d2 g / c1))``, ``k1 = ceil(n1 / ceil(d1 g / c2))``,
    ``g = gcd(c1, c2)`` (module docstring, "Strides")."""
    g = math.gcd(c1, c2)
    k2 = np.ceil(np.asarray(n2, dtype=float) / math.ceil(d2 * g / c1) - 1e-9)
    k1 = np.ceil(np.asarray(n1, dtype=float) / math.ceil(d1 * g / c2) - 1e-9)
    return np.maximum(np.maximum(n1 + n2 - 1, k2 * (n1 - 1) + n2), k1 * (n2 - 1) + n1)


def _divisors(n: int) -> list[int]:
    return [v for v in range(1, n + 1) if n % v == 0]


def _pair_fills(bm: BoundModel, axis: int, dd: list[int], s_c: np.ndarray, free: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``[b, key]``: the least over the spatial products ``S_1, S_2`` above ``c`` a completion can take (an
    assigned one's own, a free one's divisors of ``D`` at least ``lo[b, key]``) of ``S_1 S_2
    N(D_1 / S_1, D_2 / S_2)`` (module docstring)."""
    (d1, d2), (c1, c2) = dd, [int(bm.proj[Tensor.I, axis, d]) for d in dd]
    D1, D2 = int(bm.dims[d1]), int(bm.dims[d2])
    opts = []                                       # per dimension: S [b or 1, O], which may be taken [b or 1, key or 1, O]
    for d in dd:
        if free[d]:
            v = np.array(_divisors(int(bm.dims[d])), dtype=float)[None, :]
            opts.append((v, lo[:, :, None] <= v[:, None, :] * (1 + 1e-9)))
        else:
            opts.append((s_c[:, d][:, None], np.ones((1, 1, 1), dtype=bool)))
    (v1, ok1), (v2, ok2) = opts
    v1, v2 = v1[:, :, None], v2[:, None, :]
    val = v1 * v2 * sumset_size(D1 / v1, D2 / v2, c1, c2, D1, D2)                 # [b or 1, O1, O2]
    ok = ok1[:, :, :, None] & ok2[:, :, None, :]
    return np.broadcast_to(np.where(ok, val[:, None], np.inf).min(axis=(2, 3)), lo.shape)


def _pair_reads(bm: BoundModel, axis: int, dd: list[int], s_p: np.ndarray, s_c: np.ndarray, free: np.ndarray,
                lo: np.ndarray, fans: tuple[np.ndarray, np.ndarray], win: np.ndarray) -> np.ndarray:
    """``[b, key]``: the least over the splits ``S_d = u_d v_d`` (``u`` above ``p``, ``v`` on the levels
    ``p .. c - 1``) a completion can take of ``u_1 u_2 N(v_1, v_2) N(D_1 / S_1, D_2 / S_2)`` (module
    docstring): an assigned dimension its own; a free one every ``u v`` dividing ``D`` with ``u v`` at
    least ``lo[b, key]``, ``u`` and ``v`` at most the fanout left above ``p`` and on ``p .. c - 1``
    (``fans``) and, with both free, ``u_1 u_2`` and ``v_1 v_2`` too, and the least ``v`` of the free ones
    at most ``win`` (the split key's least ``z``)."""
    (d1, d2), (c1, c2) = dd, [int(bm.proj[Tensor.I, axis, d]) for d in dd]
    D1, D2 = int(bm.dims[d1]), int(bm.dims[d2])
    above, fan = fans[0][:, None, None] * (1 + 1e-9), fans[1][:, None, None] * (1 + 1e-9)   # [b, 1, 1]
    opts = []                                       # per dimension: u, v [b or 1, O], which may be taken [b, key or 1, O]
    for d in dd:
        if free[d]:
            uv = np.array([(u, n // u) for n in _divisors(int(bm.dims[d])) for u in _divisors(n)], dtype=float)
            u, v = uv[None, :, 0], uv[None, :, 1]
            ok = (lo[:, :, None] <= (u * v)[:, None, :] * (1 + 1e-9)) & (u[:, None] <= above) & (v[:, None] <= fan)
            opts.append((u, v, ok))
        else:
            opts.append((s_p[:, d][:, None], (s_c[:, d] / s_p[:, d])[:, None], np.ones((1, 1, 1), dtype=bool)))
    (u1, v1, ok1), (u2, v2, ok2) = opts
    u1, v1, u2, v2 = u1[:, :, None], v1[:, :, None], u2[:, None, :], v2[:, None, :]
    val = u1 * u2 * sumset_size(v1, v2, c1, c2, D1, D2) * sumset_size(D1 / (u1 * v1), D2 / (u2 * v2), c1, c2, D1, D2)
    ok = ok1[:, :, :, None] & ok2[:, :, None, :]                                    # [b, key or 1, O1, O2]
    if free[d1] or free[d2]:
        least = np.minimum(v1 if free[d1] else np.inf, v2 if free[d2] else np.inf)  # [1, O1, O2]
        ok = ok & (least[:, None] <= np.asarray(win, dtype=float)[None, :, None, None] * (1 + 1e-9))
    if free[d1] and free[d2]:
        ok = ok & ((v1 * v2)[:, None] <= fan[:, :, :, None]) & ((u1 * u2)[:, None] <= above[:, :, :, None])
    out = np.where(ok, val[:, None], np.inf).min(axis=(2, 3))
    return np.broadcast_to(out, (s_c.shape[0], len(win))) if out.shape[1] != len(win) else out


__all__ = ["INSTANCE_UNION", "instance_floors", "sumset_size"]
