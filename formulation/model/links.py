"""Link transfers: neighbour-to-neighbour forwarding below a spatial fanout (Timeloop v3.0.3).

With link transfers on (the default), Timeloop checks at every spatial fanout whether a child can
take its delta from a mesh neighbour instead of the parent. :func:`link_transfers` reproduces
that for a batch and returns per-row corrections that the model adds to its reads and fills.

What Timeloop does
==================

Notation as in :mod:`formulation.model.nest`: a fanout sits on storage level ``m`` (its spatial loops
are the innermost loops of ``m``) and feeds the ``n_{m+1} / n_m`` children of one instance of
``m``, the instances of level ``m + 1``. ``E`` is the child tile of tensor ``t`` (axis extents
``spans[m+1, t]``), ``sh_j`` the shift of temporal loop ``j`` (:func:`~formulation.model.nest.loop_shifts`).

*Steps.* ``nest-analysis.cpp`` calls ``ComputeSpatialWorkingSet`` once per leaf of the walk over
the temporal loops above the fanout (levels ``0..m``), running iterations #0 (weight 1) and #1
(weight ``f - 1``) of every loop. A leaf's weight ``w`` (``num_epochs_``) is the product of
``f - 1`` over the loops sitting at #1. Loops with ``f = 1`` run once and play no part.

*Deltas of the children.* Only child 0 is simulated (``FillSpatialDeltas`` with first-element
spatial extrapolation): its delta ``D_0`` is its new tile minus its previous tile with
reset-on-stride-change (``SaveAndSubtractIfSameStride``). Every other child ``c`` gets the same
box translated by ``tau(c) = sum_d i_d(c) A[t, :, d] e_{m+1, d}``, ``i_d(c)`` being the index of the
spatial loop over ``d``. Child ids are mixed-radix numbers over the spatial loops in their nest
order, innermost (least significant) first: the mesh-X loops in ``spatial_permutation`` order, then
the mesh-Y loops. **The order matters** (``spatial_order`` below).

*Multicast.* Without links, the parent sends one copy per distinct delta set:
``U |D_0| w`` words per step, ``U`` the number of distinct ``tau`` (children with equal ``tau``
share a read; this is :func:`~formulation.model.nest.distinct_children`).

*Links* (``ComputeNetworkLinkTransfers``). The ids sit on an ``h x v`` grid, ``h = max(physical
mesh-X fanout, product of X factors)`` (likewise ``v``), at ``(id % h, id // h)``. Child ``c`` is
*flagged* when its (non-empty) delta equals, as a box, the previous step's delta of a grid
neighbour ``c'`` (``+-1`` along X or Y, no wrap-around, ``c' <`` number of children):
``D_0(s) + tau(c) == D_0(s-1) + tau(c')``. With ``delta`` the move of ``D_0``'s low corner between
the two steps (the two boxes must have the same shape), that reads ``tau(c') - tau(c) == delta``.
Flagged children are served by their neighbours; the rest are multicast from the parent as usual,
``U_rest(delta)`` distinct sets. Per step and tensor, links are used only if that strictly lowers
the parent's accesses (``U_rest < U``); then the step contributes

    R += (U - U_rest) |D_0| w      (parent words saved, per parent instance)
    L += |F(delta)| |D_0| w        (link words, per parent instance).

*Book-keeping* (``tiling.cpp``, ``ComputePeerAccesses``; the counts are doubles there): each
child instance gets ``L / n_{m+1}`` extra reads (``peer_accesses``) and as many extra fills
(``peer_fills``), while its share of the parent's accesses (``parent_access_share``,
``sum_x accesses_x multicast_x / fanout``) drops by ``L / fanout`` (``fanout = n_{m+1} / n_m``);
reads are rounded, fills truncated. Totals over instances:

    reads[m]   -= n_m R
    reads[m+1] += n_{m+1} round(L / n_{m+1})
    fills[m+1] -= n_{m+1} ceil(L (n_m - 1) / n_{m+1})

so with a single parent instance, as in every reference case, the child's fills are unchanged and
its reads grow by the link words (``L`` itself when ``n_{m+1}`` divides it, as it does there).

The delta sequence in closed form
=================================

With ``z`` the innermost active loop (``f > 1``) above the fanout and
``T_j = sh_j - sum_{i > j active} sh_i`` the move of the tile when loop ``j`` advances (the inner
loops go back from index 1 to 0), the leaves of the #0/#1 walk are binary counters and the
transition into a leaf is of *type* ``k``, the loop whose index goes 0 -> 1. The type of every
transition alternates: ``first, z, k1, z, k2, z, ...`` (a non-``z`` transition needs ``z`` at
index 1, which only a ``z`` transition leaves behind). Hence before a non-``z`` step the
remembered translation is ``T_z``, and the delta of a step of type ``k`` is

* type ``z``, or ``T_k == T_z``: the tile minus the tile ``T_k`` away: empty if ``T_k = 0``, the
  whole tile if ``|T_k| >= E`` on the moving axis (no overlap), else a *slab* of width ``|T_k|``
  on that axis, at offset ``E - T_k`` from the tile's low corner when ``T_k > 0`` (0 otherwise);
* otherwise (stride change): the whole tile, offset 0;
* the first leaf: the whole tile.

(``T_z`` moves one axis, as every single loop does, so a delta is always one box.) Only three
kinds of consecutive pairs occur, each with a closed-form total weight (``F_k = prod`` of the
bounds of the loops outside ``k``, ``W_k = (f_k - 1) F_k``, the event count of loop ``k``):

=================  =====================================  ==================
pair (prev, cur)   ``delta`` (low-corner move of ``D_0``)  total weight
=================  =====================================  ==================
(first, ``z``)     ``T_z + o_z``                           ``f_z - 1``
(``z``, ``k``)     ``T_k + o_k - o_z``                     ``W_k``
(``k``, ``z``)     ``T_z + o_z - o_k``                     ``W_k (f_z - 1)``
=================  =====================================  ==================

for every active ``k != z``, with ``o`` the offsets above; a pair can link only when both deltas
have the same non-empty shape. That is ``2 n + 1`` pairs instead of ``2^n`` leaves.

Which rows can link (the cheap tests)
=====================================

On an axis that one dimension alone indexes (every axis but the input width and height), every
temporal move above the fanout is a non-zero multiple of the fanout's span ``s_{m,d} e_{m+1,d}``,
at least the child tile, while differences of child offsets stay below the span: no slab forms
there and ``delta`` must be 0 on such axes. Since every pair involves ``z``'s delta, ``z`` must move
the tensor along sliding-window axes only. So Weights and Outputs never link, and Inputs link only
through the window axes (``P`` with ``R``, ``Q`` with ``S``): when a reset on stride change
re-fetches a tile equal to the previous delta (a zero move, public-0167), or when the window moves
by exactly one child's offset (public-0043/0054/0072). Three vectorized filters narrow the batch
before any child is enumerated:

1. rows: the fanout's child keeps ``t`` and ``z``'s dimension moves ``t`` on window axes only
   (:func:`_window_dims`);
2. pairs: both deltas have the same non-empty shape and ``|delta_a| <= spread_a =
   sum_d (s_{m,d} - 1) A[t,a,d] e_{m+1,d}`` (:func:`_candidate_pairs`);
3. moves: ``delta`` is one of the differences that adding ``+-1`` or ``+-h`` to a mixed-radix
   child id can produce (:func:`_possible_moves`, one value per carry pattern).

Only the rows left (a few percent of random mappings) have their children enumerated
(:func:`_link_words`).

Bypass
======

The spatial deltas are those of the fanout's *direct* child loop level (level ``m + 1``), whether
or not it keeps ``t``. In ``tiling.cpp`` (``MaskTiles``), masking a bypassing child zeroes the
parent's link-transfer count and rescales the parent's accesses by
``child_demand / WeightedAccesses``, which undoes the links when whole multicast groups are
flagged (public-0188 is such a case: links found below ``shared_glb``, none reported). Whether a
partly flagged group leaves a trace there is not settled by any reference case, so **links are
applied only when the direct child keeps the tensor** (child level ``m + 1 < L``). When the fanout's
own level ``m`` bypasses ``t``, masking ``m`` rescales the nearest keeping level above, ``a``, by
``(P - R) / P`` (``P = U a_{m+1}``, the parent words without links): its reads become
``round(r_a (P - R) / P)`` per instance. No reference case exercises that branch either. (Both
readings are of the public ``tiling.cpp``; the reference cases cannot tell its versions apart.)

Fanout into the MACs
====================

A fanout on the last storage level feeds the MACs directly. A MAC holds nothing, so its "delta"
at every step of the walk is its whole one-point operand (a Weight, an Input, or the Output it
accumulates into), and the parent serves ``U`` distinct points per step (multicast of Weights and
Inputs; for Outputs the children that share a point are spatially reduced). Timeloop runs the
same neighbour check there (``/work/shared/timeloop-reference/README.md``, fanout-into-macs): when
a MAC's point at a step equals the point a grid neighbour had at the previous step, the neighbour
forwards it. With ``tau`` the child offsets as above and the point moving by ``T_k`` on a step of
type ``k`` (``T_z = sh_z``; no slabs, no reset on stride change, since nothing is stored), the
candidate moves are ``delta = T_k`` with total weight ``W_k`` (one word per step) for every active
loop ``k`` above the fanout (:func:`_mac_candidate_pairs`). Two cases occur:

* the point does not move (``T_k = 0``): MACs that share it (``tau(c') = tau(c)``) and are grid
  neighbours pass it on, so the parent pays once per run of unchanged steps (Weights under a
  spatial P/Q/N, Inputs under a spatial K, Outputs under a spatial C/R/S reduction);
* an input window slides by exactly one child's offset (``T_k = tau(c') - tau(c)``, spatial P with
  a temporal R, for instance): a systolic hand-over.

Book-keeping: the MACs have no counts, so only the parent changes; per parent instance ``R`` words
are saved: ``reads[m] -= n_m R`` for Weights and Inputs, and for Outputs ``updates[m]`` and
``reads[m]`` (``= updates - partition``) both drop by ``n_m R``. When level ``m`` bypasses the
tensor, the nearest keeper above is rescaled by ``(P - R) / P`` as described under Bypass, on its
reads (Weights, Inputs) or its updates and reads (Outputs). All of this is checked against
timeloop-model v3.0.3 (``tests/data/fanout_into_macs.jsonl``, provenance in ``tests/data/PROVENANCE.md``).
Links through a storage level between the fanout and the MACs that keeps nothing do not happen
(the direct child does not keep the tensor, as above).

Spatial order
=============

:class:`~formulation.model.encoding.MappingArrays` does not record the order of the spatial loops, which
decides who neighbours whom. Pass ``spatial_order`` (``[b, l, k]``: the dimensions of level ``l``
innermost first, mesh-X ones first, as :attr:`~formulation.specs.types.LevelMapping.spatial_order`;
:func:`spatial_orders` builds it from mappings), or give the arrays a ``spatial_order`` attribute.
Without it the canonical order of :func:`~formulation.model.encoding.decode` is used (X dimensions, then
Y dimensions, each in :class:`~formulation.axes.Dim` order), which is exact for mappings written
that way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulation.axes import DIMS, N_DIMS, N_TENSORS, Tensor, projection
from formulation.model.encoding import MappingArrays
from formulation.model.nest import Nest, axis_extents, loop_shifts
from formulation.specs.types import Architecture, Layer, Mapping


@dataclass(frozen=True)
class LinkCorrections:
    """Changes to the model's counts (reads, fills, updates), totals over instances, ``[b, l, t]`` (signed).

    ``transfers[b, m, t]`` are the link words below the fanout of level ``m`` (all of its
    instances), the number Timeloop reports as the network's ``link_transfers``. ``saved[b, m, t]``
    are the parent words saved per instance of ``m`` (``R`` above). ``examined`` lists the rows
    that passed the row and pair filters for some fanout and tensor.
    """

    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    transfers: np.ndarray
    saved: np.ndarray
    examined: np.ndarray


def spatial_orders(mappings: list[Mapping] | tuple[Mapping, ...] | Mapping) -> np.ndarray:
    """``order[b, l, k]``: the spatial loop order of every level (innermost first, X first)."""
    if isinstance(mappings, Mapping):
        mappings = [mappings]
    out = []
    for m in mappings:
        rows = []
        for lm in m.levels:
            seq = [int(d) for d in lm.spatial_order]
            rows.append(seq + [int(d) for d in DIMS if int(d) not in seq])
        out.append(rows)
    return np.array(out, dtype=np.int64)


def _window_tensors(proj: np.ndarray) -> list[int]:
    """Tensors with an axis indexed by two or more dimensions (the only ones that can link)."""
    return [t for t in range(N_TENSORS) if ((proj[t] != 0).sum(axis=1) >= 2).any()]


def _window_dims(proj: np.ndarray, t: int) -> np.ndarray:
    """``[d]``: dimension ``d`` moves tensor ``t`` along sliding-window axes only (and along one at least).

    A link needs the innermost active loop ``z`` above the fanout to be such a dimension (module
    docstring): on any other axis its move is a non-zero multiple of the fanout's span, which no
    difference of child offsets can match.
    """
    window = (proj[t] != 0).sum(axis=1) >= 2                                           # [a]
    moves = proj[t] != 0                                                               # [a, d]
    return moves.any(axis=0) & ~(moves & ~window[:, None]).any(axis=0)


def _candidate_pairs(nest: Nest, spans: np.ndarray, shifts: np.ndarray, proj: np.ndarray, spatial: np.ndarray,
                     rows: np.ndarray, m: int, t: int):
    """Consecutive-delta pairs of the walk above fanout ``m`` that may link, for tensor ``t``.

    The pairs are ``(first, z)``, ``(z, k)`` and ``(k, z)`` for every active loop ``k`` above the
    fanout (module docstring); a pair is kept when both deltas have the same non-empty shape and
    its move ``delta`` is within ``+-spread`` of the child offsets on every axis. Returns, per kept
    pair, the index of its row in ``rows``, ``delta [K, a]`` and its words ``|D| x weight``; and per
    row the words reaching one child over the run, ``|E| + sum_j W_j |D_j|``
    (:func:`formulation.model.nest.arrivals`).
    """
    above = N_DIMS * (m + 1)
    f = nest.loop_bound[rows, :above]
    active = f > 1
    sh = shifts[rows, :above, t] * active[:, :, None]                      # [r, j, a]
    trans = 2 * sh - sh[:, ::-1].cumsum(axis=1)[:, ::-1]                  # T_j = sh_j - sum_{i > j} sh_i
    cols = np.arange(above)[None, :]
    z = np.where(active, cols, -1).max(axis=1)                            # every row has one (caller)
    r_idx = np.arange(len(rows))
    t_z = sh[r_idx, z]                                                    # [r, a]
    E = spans[rows, m + 1, t]                                             # [r, a]
    is_z = cols == z[:, None]
    follows = is_z | (trans == t_z[:, None]).all(axis=-1)                # delta is tile minus shifted tile
    moving = trans != 0
    n_moving = moving.sum(axis=-1)
    slab = follows & (n_moving == 1) & ~(np.abs(trans) >= E[:, None]).any(axis=-1)
    slab_axis = slab[..., None] & moving
    shape = np.where(slab_axis, np.abs(trans), E[:, None])
    shape *= ~(follows & (n_moving == 0))[..., None]                      # empty delta
    off = np.where(slab_axis & (trans > 0), E[:, None] - trans, 0)
    size = shape.prod(axis=-1)
    shape_z, off_z, size_z = shape[r_idx, z], off[r_idx, z], size[r_idx, z]
    before = np.cumprod(np.concatenate([np.ones_like(f[:, :1]), f[:, :-1]], axis=1), axis=1)
    events = (f - 1) * before                                              # W_j
    arrive = E.prod(axis=-1) + (events * size).sum(axis=1)
    fz1 = f[r_idx, z] - 1
    spread = np.einsum("ad,rd->ra", np.abs(proj[t]), (spatial[rows, m] - 1) * nest.extents[rows, m + 1])
    # (first, z): the first delta is the whole tile
    r0 = np.flatnonzero((size_z > 0) & (shape_z == E).all(axis=-1))
    d0 = t_z[r0] + off_z[r0]
    w0 = size_z[r0] * fz1[r0]
    # (z, k) and (k, z), same shapes
    ri, kj = np.nonzero(active & ~is_z & (shape == shape_z[:, None]).all(axis=-1) & (size_z > 0)[:, None])
    d1 = trans[ri, kj] + off[ri, kj] - off_z[ri]
    d2 = t_z[ri] + off_z[ri] - off[ri, kj]
    w1 = size_z[ri] * events[ri, kj]
    pair_row = np.concatenate([r0, ri, ri])
    delta = np.concatenate([d0, d1, d2])
    words = np.concatenate([w0, w1, w1 * fz1[ri]])
    keep = (np.abs(delta) <= spread[pair_row]).all(axis=-1) & (words > 0)
    return pair_row[keep], delta[keep], words[keep], arrive


def _fanout_digits(arrays: MappingArrays, nest: Nest, proj: np.ndarray, order: np.ndarray, rows: np.ndarray,
                   m: int, t: int, fanout: tuple[int, int]):
    """The spatial loops of fanout ``m`` for ``rows`` as mixed-radix digits, innermost first.

    Child ids are mixed-radix numbers over the spatial loops: the X loops in ``order``, then the Y
    loops (``order[r]`` lists the dimensions innermost first). Child offsets ``tau`` lie in
    ``[0, spread]`` on every axis, so ``lin(tau) = sum_a tau_a mul_a`` with
    ``mul = cumprod(2 spread + 1)`` is one-to-one on offsets *and* on their differences
    (``[-spread, spread]``): ``lin(tau(c')) - lin(tau(c)) = lin(delta)`` iff ``tau(c') - tau(c) = delta``.

    Returns ``counts[r, k]`` and ``lin_step[r, k]`` (``lin`` of one step of digit ``k``; digits
    with count 1 pad the rows), ``mul``, ``spread``, the number of children ``n[r]`` and the grid
    size ``h[r] x v[r]`` (``max`` of the physical fanout and the product of the factors on that axis).
    """
    sx, sy = arrays.spatial_x[rows, m], arrays.spatial_y[rows, m]
    slot_dim = np.concatenate([order, order], axis=1)                                 # [r, 14]
    counts = np.concatenate([np.take_along_axis(sx, order, axis=1), np.take_along_axis(sy, order, axis=1)], axis=1)
    used = np.argsort(counts == 1, axis=1, kind="stable")[:, :max(1, int((counts > 1).sum(axis=1).max()))]
    counts = np.take_along_axis(counts, used, axis=1)                                 # spatial loops only
    slot_dim = np.take_along_axis(slot_dim, used, axis=1)
    steps = np.moveaxis(proj[t][:, slot_dim], 0, -1) * np.take_along_axis(nest.extents[rows, m + 1], slot_dim,
                                                                          axis=1)[..., None]  # [r, k, a]
    spread = ((counts - 1)[..., None] * steps).sum(axis=1)                            # [r, a]
    mul = np.cumprod(np.concatenate([np.ones_like(spread[:, :1]), 2 * spread[:, :-1] + 1], axis=1), axis=1)
    lin_step = (steps * mul[:, None]).sum(axis=-1) * (counts > 1)
    h = np.maximum(fanout[0], sx.prod(axis=1))
    v = np.maximum(fanout[1], sy.prod(axis=1))
    return counts, lin_step, mul, spread, counts.prod(axis=1), h, v


def _possible_moves(counts: np.ndarray, lin_step: np.ndarray, n: np.ndarray, h: np.ndarray):
    """A superset of ``lin(tau(c') - tau(c))`` over grid neighbours, as ``(row, value)`` arrays.

    Neighbours differ by ``+-1`` (same grid row) or ``+-h`` in id. Adding ``A < n`` to a mixed-radix
    id changes digit ``k`` by ``a_k + carry_{k-1} - count_k carry_k`` (``a_k`` the digits of ``A``),
    so every such difference is ``sum_k (a_k + carry_{k-1} - count_k carry_k) lin_step_k`` for a
    carry pattern with ``carry_k = 1`` only if ``a_k + carry_{k-1} >= 1``, ``carry_k = 1`` whenever
    ``a_k + carry_{k-1} = count_k``, and no carry out of the last digit. For ``A = 1`` the carries
    are a prefix: ``lin_step_j - sum_{i<j} (count_i - 1) lin_step_i`` for every digit ``j``; for
    ``A = h`` all ``2^k`` patterns are screened.
    """
    rows_all = np.arange(len(counts))
    prefix = np.cumsum((1 - counts) * lin_step, axis=1) - (1 - counts) * lin_step
    r1, j1 = np.nonzero(counts > 1)
    plus_one = lin_step[r1, j1] + prefix[r1, j1]
    out_rows, out_values = [r1, r1], [plus_one, -plus_one]
    digits = (counts > 1).sum(axis=1)
    radix = np.cumprod(np.concatenate([np.ones_like(counts[:, :1]), counts[:, :-1]], axis=1), axis=1)
    vertical = h < n
    for k_count in np.unique(digits[vertical]):  # 2^k carry patterns for rows with k spatial loops
        rows = rows_all[vertical & (digits == k_count)]
        cnt, step, rad = counts[rows, :k_count], lin_step[rows, :k_count], radix[rows, :k_count]
        carry = (np.arange(2 ** k_count)[:, None] >> np.arange(k_count)[None, :]) & 1  # [P, k]
        carry_in = np.concatenate([np.zeros_like(carry[:, :1]), carry[:, :-1]], axis=1)
        a = (h[rows, None] // rad) % cnt                                              # [r, k]
        incoming = a[:, None, :] + carry_in[None]                                     # [r, P, k]
        ok = ((carry[None] == 0) | (incoming >= 1)) & ((incoming < cnt[:, None, :]) | (carry[None] == 1))
        ok = ok.all(axis=-1) & (carry[:, -1] == 0)[None, :]
        diff = ((incoming - cnt[:, None, :] * carry[None]) * step[:, None, :]).sum(axis=-1)
        r_ok, p_ok = np.nonzero(ok)
        out_rows += [rows[r_ok], rows[r_ok]]
        out_values += [diff[r_ok, p_ok], -diff[r_ok, p_ok]]
    return np.concatenate(out_rows), np.concatenate(out_values)


def _member(rows: np.ndarray, values: np.ndarray, set_rows: np.ndarray, set_values: np.ndarray) -> np.ndarray:
    """Whether each ``(rows[i], values[i])`` is one of the pairs ``(set_rows[j], set_values[j])``."""
    codes = np.unique(np.concatenate([set_values, values]), return_inverse=True)[1].ravel()
    width = int(codes.max()) + 1 if len(codes) else 1
    return np.isin(rows * width + codes[len(set_values):], set_rows * width + codes[:len(set_values)])


def _children(counts: np.ndarray, lin_step: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``lin(tau(c))`` for every child id ``c < max(n)``: ``[r, c]``.

    With ``q_k = floor(c / radix_k)`` digit ``k`` is ``q_k - count_k q_{k+1}``, so
    ``lin = sum_k q_k (lin_step_k - count_{k-1} lin_step_{k-1})`` needs one division per digit
    (in floating point, exact at these sizes).
    """
    radix = np.cumprod(np.concatenate([np.ones_like(counts[:, :1]), counts[:, :-1]], axis=1), axis=1)
    coeff = lin_step - np.concatenate([np.zeros_like(lin_step[:, :1]), (counts * lin_step)[:, :-1]], axis=1)
    ids = np.arange(int(n.max()), dtype=np.float64)
    quotient = np.floor(ids[None, :, None] / radix[:, None, :]).astype(np.int64)      # [r, c, k]
    return (quotient * coeff[:, None, :]).sum(axis=-1)


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Number of distinct values per row, ignoring entries equal to ``_NONE``."""
    s = np.sort(keys, axis=1)
    return (s[:, :1] != _NONE).sum(axis=1) + ((s[:, 1:] != s[:, :-1]) & (s[:, 1:] != _NONE)).sum(axis=1)


_NONE = np.iinfo(np.int64).min


def _link_words(arrays: MappingArrays, nest: Nest, proj: np.ndarray, order: np.ndarray, rows: np.ndarray, m: int,
                t: int, fanout: tuple[int, int], pair_row: np.ndarray, delta: np.ndarray, words: np.ndarray):
    """Exact ``(R, L, U)`` per row of ``rows`` (per instance of ``m``) from the candidate pairs.

    Child ``c`` is flagged for a pair when a grid neighbour ``c'`` has ``tau(c') - tau(c) = delta``;
    the pair links when that leaves fewer distinct ``tau`` among the unflagged children than among
    all (``U_rest < U``). Pairs whose move is not even in :func:`_possible_moves` are dropped
    before the children are enumerated; pairs of one row with the same move are evaluated once.
    ``U`` (distinct child offsets) is only filled in for rows whose children were enumerated, which
    includes every row with ``L > 0``.
    """
    counts, lin_step, mul, spread, n, h, v = _fanout_digits(arrays, nest, proj, order, rows, m, t, fanout)
    r_count = len(rows)
    big_r = np.zeros(r_count, dtype=np.int64)
    big_l = np.zeros(r_count, dtype=np.int64)
    big_u = np.zeros(r_count, dtype=np.int64)
    ki = pair_row
    want = (delta * mul[ki]).sum(axis=-1)
    possible = _member(ki, want, *_possible_moves(counts, lin_step, n, h))
    ki, want, words = ki[possible], want[possible], words[possible]
    if len(ki) == 0:
        return big_r, big_l, big_u
    groups, inverse = np.unique(np.stack([ki, want], axis=1), axis=0, return_inverse=True)
    group_words = np.zeros(len(groups), dtype=np.int64)
    np.add.at(group_words, inverse.ravel(), words)
    sub, local = np.unique(groups[:, 0], return_inverse=True)                         # rows to enumerate
    local = local.ravel()
    want = groups[:, 1]
    lin = _children(counts[sub], lin_step[sub], n[sub])
    c_count = lin.shape[1]
    ids = np.arange(c_count)[None, :]
    ns, hs, vs = n[sub][:, None], h[sub][:, None], v[sub][:, None]
    valid = ids < ns
    key = np.where(valid, lin, _NONE)
    distinct = _distinct(key)
    gv = np.floor(ids / hs.astype(np.float64)).astype(np.int64)
    gh = ids - gv * hs
    right = np.full(lin.shape, _NONE)                                                  # lin(c + 1) - lin(c)
    right[:, :-1] = np.where((gh[:, :-1] < hs - 1) & (ids[:, 1:] < ns), lin[:, 1:] - lin[:, :-1], _NONE)
    left = np.full(lin.shape, _NONE)                                                   # lin(c - 1) - lin(c)
    left[:, 1:] = np.where(right[:, :-1] == _NONE, _NONE, -right[:, :-1])
    below = np.minimum(ids + hs, c_count - 1)
    down = np.where(valid & (gv < vs - 1) & (ids + hs < ns),
                    np.take_along_axis(lin, below, axis=1) - lin, _NONE)               # lin(c + h) - lin(c)
    above = np.maximum(ids - hs, 0)
    up = np.where(valid & (gv > 0), np.take_along_axis(lin, above, axis=1) - lin, _NONE)  # lin(c - h) - lin(c)
    moves = np.stack([right, left, down, up], axis=1)                                  # [s, 4, c]
    flagged = np.zeros((len(local), c_count), dtype=bool)
    chunk = max(1, 4_000_000 // (4 * c_count))
    for lo in range(0, len(local), chunk):
        flagged[lo:lo + chunk] = (moves[local[lo:lo + chunk]] == want[lo:lo + chunk, None, None]).any(axis=1)
    rest = _distinct(np.where(flagged, _NONE, key[local]))
    use = rest < distinct[local]
    rows_of = sub[local]
    np.add.at(big_r, rows_of[use], (distinct[local] - rest)[use] * group_words[use])
    np.add.at(big_l, rows_of[use], flagged.sum(axis=1)[use] * group_words[use])
    big_u[sub] = distinct
    return big_r, big_l, big_u


def _mac_candidate_pairs(nest: Nest, shifts: np.ndarray, proj: np.ndarray, spatial: np.ndarray, rows: np.ndarray,
                        m: int, t: int):
    """Candidate steps of a fanout onto the MACs (module docstring, "Fanout into the MACs").

    A MAC holds nothing: its "delta" is its one-point operand at every step, so a step of type
    ``k`` moves it by ``T_k`` (``T_z = sh_z``) and the steps of type ``k`` weigh ``W_k`` in all.
    Returns, like :func:`_candidate_pairs`, the kept pairs' rows (indices into ``rows``), moves and
    words, and per row the operands one MAC receives over the run (``compute``).
    """
    above = N_DIMS * (m + 1)
    f = nest.loop_bound[rows, :above]
    active = f > 1
    sh = shifts[rows, :above, t] * active[:, :, None]
    trans = 2 * sh - sh[:, ::-1].cumsum(axis=1)[:, ::-1]
    before = np.cumprod(np.concatenate([np.ones_like(f[:, :1]), f[:, :-1]], axis=1), axis=1)
    events = (f - 1) * before
    spread = np.einsum("ad,rd->ra", np.abs(proj[t]), (spatial[rows, m] - 1) * nest.extents[rows, m + 1])
    ri, kj = np.nonzero(active)
    delta = trans[ri, kj]
    words = events[ri, kj]
    keep = (np.abs(delta) <= spread[ri]).all(axis=-1) & (words > 0)
    return ri[keep], delta[keep], words[keep], nest.compute[rows]


def link_transfers(layer: Layer, arch: Architecture, arrays: MappingArrays, nest: Nest, reads: np.ndarray,
                   *, updates: np.ndarray | None = None, proj: np.ndarray | None = None,
                   spans: np.ndarray | None = None, shifts: np.ndarray | None = None,
                   spatial_order: np.ndarray | None = None) -> LinkCorrections:
    """Corrections to reads, fills and updates (totals over instances) for link transfers; see the module docstring.

    ``reads`` and ``updates`` are the model's counts without links (``[b, l, t]``, used when a
    fanout's level bypasses the tensor; ``updates`` only matters for Outputs below a fanout onto
    the MACs). ``proj``/``spans``/``shifts`` may be passed when already computed.
    """
    levels = len(arch.levels)
    b = arrays.size
    out_reads = np.zeros((b, levels, N_TENSORS), dtype=np.int64)
    out_fills = np.zeros_like(out_reads)
    out_updates = np.zeros_like(out_reads)
    transfers = np.zeros_like(out_reads)
    saved = np.zeros_like(out_reads)
    examined: list[np.ndarray] = []
    if updates is None:
        updates = np.zeros_like(reads)
    if proj is None:
        proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
    if b == 0:
        return LinkCorrections(out_reads, out_fills, out_updates, transfers, saved, np.zeros(0, dtype=np.int64))
    if spans is None:
        spans = axis_extents(nest, proj)
    if shifts is None:
        shifts = loop_shifts(nest, proj)
    if spatial_order is None:
        spatial_order = getattr(arrays, "spatial_order", None)
    spatial = arrays.spatial
    keep = arrays.keep
    inst = nest.instances
    for m in range(levels):
        mac = m == levels - 1
        fan = spatial[:, m].prod(axis=1) > 1
        if not fan.any():
            continue
        # z: the innermost loop with f > 1 above the fanout; every pair involves its delta
        active = nest.loop_bound[:, :N_DIMS * (m + 1)] > 1
        has_z = active.any(axis=1)
        z_dim = nest.loop_dim[np.arange(b), N_DIMS * (m + 1) - 1 - np.argmax(active[:, ::-1], axis=1)]
        for t in (range(N_TENSORS) if mac else _window_tensors(proj)):
            below = np.ones(b, dtype=bool) if mac else keep[:, m + 1, t] & _window_dims(proj, t)[z_dim]
            rows = np.flatnonzero(fan & has_z & below)
            if len(rows) == 0:
                continue
            if mac:
                pair_row, delta, words, arrive = _mac_candidate_pairs(nest, shifts, proj, spatial, rows, m, t)
            else:
                pair_row, delta, words, arrive = _candidate_pairs(nest, spans, shifts, proj, spatial, rows, m, t)
            if len(pair_row) == 0:
                continue
            hit, pair_row = np.unique(pair_row, return_inverse=True)
            sub = rows[hit]
            examined.append(sub)
            order = (np.broadcast_to(np.arange(N_DIMS), (len(sub), N_DIMS)) if spatial_order is None
                     else np.asarray(spatial_order)[sub, m].astype(np.int64))
            big_r, big_l, big_u = _link_words(arrays, nest, proj, order, sub, m, t, arch.fanout(m),
                                              pair_row.ravel(), delta, words)
            linked = big_l > 0
            sub, big_r, big_l, big_u, arrive = sub[linked], big_r[linked], big_l[linked], big_u[linked], \
                arrive[hit[linked]]
            n_m = inst[sub, m]
            transfers[sub, m, t] = n_m * big_l
            saved[sub, m, t] = big_r
            if not mac:
                n_c = inst[sub, m + 1]
                out_reads[sub, m + 1, t] += n_c * ((2 * big_l + n_c) // (2 * n_c))      # round(L / n_c)
                out_fills[sub, m + 1, t] -= n_c * -(-big_l * (n_m - 1) // n_c)          # ceil(L (n_m - 1) / n_c)
            own = keep[sub, m, t]
            out_reads[sub[own], m, t] -= n_m[own] * big_r[own]
            if mac and t == Tensor.O:
                out_updates[sub[own], m, t] -= n_m[own] * big_r[own]
            for j in np.flatnonzero(~own):  # the fanout's level bypasses t: rescale the nearest keeper above
                r = int(sub[j])
                a = max(l for l in range(m) if keep[r, l, t])
                n_a = int(inst[r, a])
                count = updates if t == Tensor.O else reads  # what the children's traffic becomes there
                per_a = int(count[r, a, t]) // n_a
                parent = int(big_u[j]) * int(arrive[j])  # P: parent words per instance of m without links
                new = (2 * per_a * (parent - int(big_r[j])) + parent) // (2 * parent)
                out_reads[r, a, t] -= n_a * (per_a - new)
                if t == Tensor.O:
                    out_updates[r, a, t] -= n_a * (per_a - new)
    ex = np.unique(np.concatenate(examined)) if examined else np.zeros(0, dtype=np.int64)
    return LinkCorrections(out_reads, out_fills, out_updates, transfers, saved, ex)
