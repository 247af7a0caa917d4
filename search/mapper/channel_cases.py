"""Where a windowed input's channel loops sit while C is free: a per-split term of partial tilings.

With K assigned and looping at level 0 (``t_{0,K} > 1``) and C still free, every bound of
:mod:`search.mapper.bounds` and :mod:`search.mapper.partial_orders` lets the windowed input dodge
the refetch by K's level-0 loop (a C loop might sit outside it, or no C loop above its keepers at
all) and lets the Outputs dodge the refetch by C's level-0 loop (it might sit inside K's, or not
exist) at once; :mod:`search.mapper.window_refetch` prices that order only once C's loops are
assigned. :func:`channel_case_excess` charges the cheapest of the three ways a completion can place
C's loops, per split of the free fanout (measured: on ResNet-18's ``layer1_3x3`` on
``eyeriss-like`` the forty-odd partial tilings with only K assigned, K's DRAM factor 2, held the
certified bound at the root's value until expanded).

**Claim.** Fix a partial tiling with a sliding window, K assigned with ``t_{0,K} > 1``, C free with
``D_C > 1`` and every other dimension of ``Rel_I`` (N) assigned and inactive at every level (or of
bound 1); a keep combination ``k`` and a completion of both with split ``z``
(:mod:`search.mapper.splits`). Let ``k_n >= 1`` be the input's last keeper above the MACs in ``k``,
``(p', k_n)`` its pair into it, ``c_O < L`` the Outputs' first keeper below level 0, and ``m*`` the
deepest level ``< k_n`` with an active C loop in the completion (``-1``: none; N has none).

1. ``m* >= 1``: K's loop of level 0 encloses that C loop (it is at a deeper level), which is above
   ``k_n``; by "Compulsory traffic" (:mod:`search.mapper.bounds`: the first and last tiles of one of
   its iterations differ in C, a single-dimension axis of the input, so every element used in the
   next iteration arrives again; the iterations use the same elements) the compulsory reads of
   ``p'`` and fills of ``k_n`` are at least ``t_{0,K} |I| SI'`` (``Lambda'`` is 1 here: no assigned
   ``Rel_I`` loop is active, so the bound's own floor counts no K loop).
2. ``m* = 0``: C's innermost loop of level 0 is the innermost active ``Rel_I`` loop there (N has
   none). (a) If K's loop of level 0 is outside it, it encloses it, and the same holds as in 1.
   (b) Otherwise that C loop, with factor ``f >= c_min`` (the least divisor ``> 1`` of ``D_C``: a
   perfect factorization), encloses K's loop of level 0, an active ``Rel_O`` loop above ``c_O``;
   so the Outputs' innermost active ``Rel_O`` loop above ``c_O`` is K's or inside it, and the C
   loop is outside it and counts in the arrivals at ``c_O`` (:mod:`search.mapper.bounds`,
   "Arrivals"), beside the assigned loops the pair's ``Lambda`` counts (levels above the
   completion's ``m*_O``, disjoint from a free loop): the pair ``(0, c_O)`` may take ``Lambda
   c_min`` (every term of its cost grows with ``Lambda``, :func:`search.mapper.pair_terms.pair_energy`).
3. ``m* = -1``: no C loop is active at the levels ``< k_n``, so C's extent below ``k_n`` is
   ``D_C / prod_{m < k_n} s_{m,C} >= D_C / z_C``; the tiles kept at ``k_n`` grow with it (spans
   rise with every extent; the other free extents at 1), so it is at most ``E_C``, the largest
   divisor of ``D_C`` with which they fit ``k_n``: the split must have ``z_C >= D_C / E_C``, and
   the largest ``z_C`` over the placement vectors it gathers
   (:meth:`search.mapper.splits.SplitTable.max_product`; the completion's own is one of them) is
   at least that.

So the completion spends at least the split's chain sum (the pair costs of ``k``'s chains priced
with ``z``, :func:`search.mapper.partial_orders.partial_order_bounds`) plus the least of: the
excess of the input's pair ``(p', k_n)`` with its compulsory floors times ``t_{0,K}`` (1, 2a), the
excess of the Outputs' pair ``(0, c_O)`` with ``Lambda c_min`` (2b), and 0 if the split allows 3
(else nothing). Both excesses are taken on the same split's pair costs (exact per split key,
:func:`search.mapper.pair_terms.tensor_terms`), each raises one pair and leaves the others as they
are, so the raised pair and the rest of the chains still bound disjoint counts. Without ``c_O``
(the Outputs go from level 0 to the MACs) or ``k_n`` (the inputs go from level 0 to the MACs) the
term says nothing. It joins the other terms' excess by the largest (they may raise the same pairs).
"""

from __future__ import annotations

import numpy as np

from formulation.axes import DIMS, N_DIMS, Dim, Tensor
from formulation.factors import divisors
from search.mapper.capacity import largest_fitting_extent
from search.mapper.pair_terms import pair_energy, tensor_terms
from search.mapper.window_refetch import scaled_compulsory

#: Whether the split bound of partial tilings charges the cheapest placement of a free C's loops
#: (module docstring); off is weaker, still valid.
CHANNEL_CASES = True


def eligible_rows(bm, temporal: np.ndarray, free: np.ndarray) -> np.ndarray | None:
    """``[b]``: the rows the claim covers (module docstring); ``None`` when no row can be."""
    free = np.asarray(free, dtype=bool)
    if not (CHANNEL_CASES and bm.input_windowed) or not free[Dim.C] or bm.dims[Dim.C] <= 1 or free[Dim.K]:
        return None
    others = [int(d) for d in DIMS if bm.rel[Tensor.I][d] and d != Dim.C and bm.dims[d] > 1]
    if any(free[d] for d in others):
        return None
    rows = temporal[:, 0, Dim.K] > 1
    for d in others:
        rows &= (temporal[:, :, d] <= 1).all(axis=1)
    return rows if rows.any() else None


def channel_case_excess(oe, batch, free: np.ndarray, keeps: np.ndarray, table, splits) -> np.ndarray | None:
    """``[b, J, k]``: per row of ``batch`` (:meth:`search.mapper.bounds.BoundModel.batch`), split ``j`` of
    ``splits`` (from ``table``) and keep combination of ``keeps``, the least excess of the module
    docstring's cases over the split's chain sum (pJ, with ``G``); 0 where the claim says nothing;
    ``None`` when it covers no row."""
    bm = oe.bm
    free = np.asarray(free, dtype=bool)
    rows = eligible_rows(bm, batch.t, free)
    if rows is None or splits.index is None:
        return None
    L, g = bm.levels, bm.layer.G
    t = batch.t
    d_c = int(bm.dims[Dim.C])
    c_min = float(min(x for x in divisors(d_c) if x > 1))
    terms_i = tensor_terms(bm, Tensor.I, batch, free, splits.keys[Tensor.I])
    terms_o = tensor_terms(bm, Tensor.O, batch, free, splits.keys[Tensor.O])
    k0 = t[:, 0, Dim.K].astype(np.float64)[:, None]
    c_mask = np.zeros(N_DIMS, dtype=bool)
    c_mask[Dim.C] = True
    zc = table.max_product(c_mask)[splits.index]                                         # [J]
    key_i, key_o = splits.key[:, Tensor.I], splits.key[:, Tensor.O]
    cache: dict = {}

    def excess(kind: str, p: int, c: int) -> np.ndarray:                                 # [b, J]
        if (kind, p, c) not in cache:
            if kind == "I":
                plain = pair_energy(bm, Tensor.I, p, c, terms_i)[0]
                raised = pair_energy(bm, Tensor.I, p, c, scaled_compulsory(terms_i, k0, c))[0]
                keyed = key_i
            else:
                plain = pair_energy(bm, Tensor.O, p, c, terms_o)[0]
                raised = pair_energy(bm, Tensor.O, p, c, dict(terms_o, lam=terms_o["lam"] * c_min))[0]
                keyed = key_o
            delta = np.broadcast_to(np.maximum(raised - plain, 0.0) * g, (t.shape[0], plain.shape[1]))
            cache[kind, p, c] = delta[:, keyed]
        return cache[kind, p, c]

    out = np.zeros((t.shape[0], len(splits.total), len(keeps)))
    for j, k in enumerate(keeps):
        pairs_i = oe.chain_pairs[Tensor.I][oe.chain_index[k, Tensor.I]]
        pairs_o = oe.chain_pairs[Tensor.O][oe.chain_index[k, Tensor.O]]
        kn, c_o = pairs_i[-1][0], pairs_o[0][1]
        if kn < 1 or c_o >= L:
            continue
        least = np.minimum(excess("I", pairs_i[-2][0], kn), excess("O", 0, c_o))
        e_c = largest_fitting_extent(bm, oe.keep_table[k, kn][None], batch.ext[:, kn], kn, Dim.C)[:, 0]  # [b]
        open3 = zc[None, :] * e_c[:, None] >= d_c                                            # [b, J]
        out[:, :, j] = np.where(rows[:, None] & ~open3, least, 0.0)
    return out


__all__ = ["CHANNEL_CASES", "channel_case_excess", "eligible_rows"]
