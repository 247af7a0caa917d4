"""Refetch that a full buffer forces on another tensor: the capacity bound of partial tilings.

The bounds of :mod:`search.mapper.bounds` take a free dimension's factors at 1 and let each
tensor place them where they cost it least; every tensor of a GEMM whose Outputs fill the global
buffer is thereby credited with the free dimension sitting below that buffer, though it does not
fit there. :func:`capacity_refetch` charges it, per keep combination.

**Claim.** Fix a partial tiling (free dimensions ``U`` at 1), a keep combination ``k`` and a
mapping completing both. Let level ``c >= 1`` keep the tensors ``T_c`` in ``k`` and ``d in U``.
Every tile at ``c`` grows with the extent ``e = prod_{m >= c} t_{m,d} s_{m,d}`` of ``d`` below
``c`` (spans ``1 + sum proj (ext - 1)`` rise with every extent), and the other free extents are
``>= 1``; so ``sum_{t in T_c} tile_t(e) <= size_c`` with the other free extents at 1 holds, and
``e <= e_max``, the largest divisor of ``D_d`` passing that test (``e`` divides ``D_d``). The
product of ``d``'s factors above ``c`` is ``D_d / e``; its spatial part ``prod_{m < c} s_{m,d}``
is at most ``S = prod_{m < c} cap_m`` (the fanout left), so its temporal part ``prod_{m < c}
t_{m,d} = D_d / (e prod_{m<c} s_{m,d})`` is at least ``tau_{c,d} = D_d / q``, ``q`` the largest
divisor of ``D_d`` at most ``e_max S`` (``e prod s`` divides ``D_d``).

Now take a tensor ``t'``, a pair ``(p', c')`` of its consecutive keepers in ``k`` with ``c' < L``,
and ``m*_a`` the deepest level ``< c'`` with an active *assigned* loop over ``Rel_t'``
(:func:`search.mapper.order_classes.deepest_relevant`; the bound's ``Rel``). The completion's
deepest such level ``m*`` is at or below ``m*_a`` (free dimensions only add active loops), and
every loop of the levels ``< m*`` is at or outside ``j*`` and counts in the arrivals
(:mod:`search.mapper.bounds`, "Arrivals": ``a_c' >= W_c' P_c' prod_{j <= j*} f_j``). For a free
``d`` outside ``Rel_t'`` and any keeper ``c <= m*_a`` of ``k``, the temporal loops of ``d`` at the
levels ``< c`` are among them, disjoint from the assigned loops the bound's ``Lambda_c'`` counts
and from the ``Rel_t'`` loops of ``P_c'``. So ``Lambda_c'`` may be multiplied by

    F_{k, t', c'} = prod_{d in U, d not in Rel_t'} max_{1 <= c <= m*_a} tau_{c,d}(k)

(``tau = 1`` where no tensor kept at ``c`` grows with ``d``).

**Jointly** (:func:`joint_factors`). The free dimensions ``D_t' = {d in U, d not in Rel_t', D_d > 1}``
may each fit below ``c`` alone and still not all together (the Outputs of a convolution whose
``P`` or ``Q`` alone fits the global buffer but not ``P Q``). With extents ``e_d`` below ``c``
(divisors of ``D_d``; the other free extents ``>= 1``), the tiles kept at ``c`` fit only if they fit
with the other free extents at 1 (spans rise with every extent), so ``prod_{D_t'} e_d <= E``, the
largest product over the fitting tuples of divisors; the spatial factors of ``D_t'`` above ``c``
multiply to at most ``S = prod_{m < c} cap_m`` (all free dimensions share the fanout left); so
the temporal loops of ``D_t'`` at the levels ``< c`` multiply to at least ``ceil(prod_{D_t'} D_d /
(E S))`` (an integer). They are loops of free dimensions outside ``Rel_t'`` at the levels ``< c``,
counted as above for every keeper ``c <= m*_a``; so ``Lambda_c'`` may instead be multiplied by
the largest of these over ``1 <= c <= m*_a`` (``1`` where no tuple fits: the combination then
overflows and is cut elsewhere), and by the larger of that and ``F``, both bounding products
of loops the arrivals count. The same holds for a windowed input (its ``Rel`` is N and C; spans
rise with every extent). Tensors with more than :data:`MAX_JOINT_TUPLES` tuples keep ``F``
(weaker, valid).

Every term of a pair's cost
(:func:`search.mapper.pair_terms.pair_energy`: reads, fills, updates, the Outputs'
``Lambda - 1``, the multicast and window factors, the links' floor) grows with ``Lambda`` and
holds with the completion's true product in its place, the compulsory and sweep floors for every
completion; the pairs into the MACs have no ``Lambda``. Hence the completion's energy with keep
combination ``k`` is at least ``MACs e_mac + sum`` over ``k``'s chains of the pair costs with
``Lambda F`` (the relaxed split, :func:`search.mapper.splits.relaxed_keys`, valid for every
completion), which :func:`capacity_energy` returns; :mod:`search.mapper.partial_orders` takes
the larger of it and the joint-order bound per keep combination, then the least over the
combinations that fit.
"""

from __future__ import annotations

import itertools

import numpy as np

from formulation.axes import N_TENSORS
from search.mapper.bounds import RelaxedTerms
from search.mapper.order_classes import deepest_relevant
from search.mapper.pair_terms import pair_energy
from search.tiling import divisors

#: Whether partial tilings' per-keep-combination energy is raised by the refetch their full
#: buffers force (module docstring); off is weaker, still valid.
CAPACITY_REFETCH = True
#: Whether the free dimensions irrelevant to a tensor are also forced jointly (module docstring,
#: "Jointly"); off is weaker, still valid. ``JOINT_WINDOWED`` takes it to layers with a sliding
#: window too. It was off there: a network run (ResNet-18 on ``eyeriss-like``, 120 s, load 3.3-4)
#: reached worse incumbents with it on, but main's code at the same load (4.7, 2026-12-01) reaches
#: the same worse incumbents, so that was the load (the seeds then sampled for a time; their count
#: is now fixed by the budget). With the windowed input's order refetch
#: (:mod:`search.mapper.window_refetch`) it raises ResNet-18's layer1_3x3 bound after 60 s alone
#: from 403,304 to 406,404; in the network run after the merge (load 1.5) it left layer2_3x3_s2
#: at 0.7% and layer2_3x3 at 3.0%, against 4.7% and 4.0% off.
JOINT_CAPACITY = True
JOINT_WINDOWED = True
#: Most tuples of divisors enumerated per tensor for the joint term.
MAX_JOINT_TUPLES = 512


def _largest_divisor_at_most(divs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The largest of the ascending ``divs`` that is ``<= x`` (``divs[0] = 1``; ``x >= 1``)."""
    return divs[np.maximum(np.searchsorted(divs, x, side="right") - 1, 0)]


def largest_fitting_extent(bm, kept: np.ndarray, ext: np.ndarray, c: int, d: int) -> np.ndarray:
    """``e_max[b, K]``: the largest divisor of ``D_d`` that, as ``d``'s extent at level ``c`` (the other
    extents as in ``ext[b, 7]``), lets the tiles each keep row ``kept[K, t]`` holds there fit together
    (spans rise with every extent); 0 where none does."""
    divs = np.array(divisors(int(bm.dims[d])), dtype=np.float64)
    x = np.repeat(ext[:, None], len(divs), axis=1)                                           # [b, e, 7]
    x[:, :, d] = divs[None]
    tile = bm.spans(x).prod(axis=-1)                                                         # [b, e, t]
    used = np.einsum("kt,bet->bke", kept.astype(np.float64), tile)
    return np.where(used <= bm.sizes[c], divs[None, None], 0.0).max(axis=2)


def forced_factors(bm, keep_table: np.ndarray, batch, free: np.ndarray, top: int | None = None) -> dict[int, np.ndarray]:
    """Per free dimension ``d`` whose extent some kept tile grows with, ``tau[b, K, L]``: the least
    product of ``d``'s temporal factors at the levels ``< c`` over the keepers ``1 <= c' <= c`` of
    each keep combination (module docstring; ``cummax`` over ``c`` of ``tau_{c,d}``), 1 where none;
    for ``c`` up to ``top`` (default: every level; deeper ones hold the value at ``top``)."""
    L = bm.levels
    b = batch.t.shape[0]
    K = keep_table.shape[0]
    cap_above = batch.cap_above                                                              # prod_{m<c} cap_m
    grows = (bm.proj != 0).any(axis=1)                                                       # [t, 7]
    out = {}
    for d in np.flatnonzero(free & (bm.dims > 1)):
        divs = np.array(divisors(int(bm.dims[d])), dtype=np.float64)
        tau = np.ones((b, K, L))
        for c in range(1, L if top is None else min(top + 1, L)):
            kept = keep_table[:, c, :] & grows[None, :, d]                                   # [K, t]
            if not bm.bounded[c] or not kept.any():
                continue
            e_max = largest_fitting_extent(bm, keep_table[:, c, :], batch.ext[:, c], c, int(d))   # [b, K]
            q = _largest_divisor_at_most(divs, np.maximum(e_max * cap_above[:, c, None], 1.0))
            tau[:, :, c] = np.where((e_max > 0) & kept.any(axis=1)[None], bm.dims[d] / q, 1.0)
        if (tau > 1).any():
            out[int(d)] = np.maximum.accumulate(tau, axis=2)
    return out


def joint_factors(bm, keep_table: np.ndarray, batch, dims: list[int], top: int | None = None) -> np.ndarray | None:
    """``[b, K, L]``: the least product of the temporal factors of the free dimensions ``dims`` at the
    levels ``< c``, cumulative max over the keepers ``1 <= c' <= c`` of each keep combination (module
    docstring, "Jointly"), for ``c`` up to ``top`` (default: every level; deeper ones hold the value
    at ``top``); ``None`` with fewer than two dimensions or too many tuples."""
    if len(dims) < 2:
        return None
    tuples = np.array(list(itertools.product(*[divisors(int(bm.dims[d])) for d in dims])), dtype=np.float64)
    if len(tuples) > MAX_JOINT_TUPLES:
        return None
    L = bm.levels
    b, K = batch.t.shape[0], keep_table.shape[0]
    need = float(np.prod(bm.dims[dims]))
    volume = tuples.prod(axis=1)                                                             # [n]
    grows = (bm.proj[:, :, dims] != 0).any(axis=(1, 2))                                      # [t]
    out = np.ones((b, K, L))
    for c in range(1, L if top is None else min(top + 1, L)):
        if not bm.bounded[c] or not (keep_table[:, c, :] & grows[None]).any():
            continue
        ext = np.repeat(batch.ext[:, c][:, None], len(tuples), axis=1)                       # [b, n, 7]
        ext[:, :, dims] = tuples[None]
        tile = bm.spans(ext).prod(axis=-1)                                                   # [b, n, t]
        used = np.einsum("kt,bnt->bkn", keep_table[:, c, :].astype(np.float64), tile)
        best = np.where(used <= bm.sizes[c], volume[None, None], 0.0).max(axis=2)            # [b, K]
        tau = np.ceil(need / (np.maximum(best, 1.0) * batch.cap_above[:, c, None]) - 1e-9)
        out[:, :, c] = np.where(best > 0, np.maximum(tau, 1.0), 1.0)
    return np.maximum.accumulate(out, axis=2) if (out > 1).any() else None


def capacity_refetch(bm, keep_table: np.ndarray, temporal: np.ndarray, batch, free: np.ndarray):
    """``F[b, K, t, L + 1]`` of the module docstring (1 where nothing is forced; with
    :data:`JOINT_CAPACITY` the larger of it and the joint factor), or ``None`` when no row is forced
    anything; ``batch`` the rows' :meth:`search.mapper.bounds.BoundModel.batch`."""
    free = np.asarray(free, dtype=bool)
    L = bm.levels
    taus = forced_factors(bm, keep_table, batch, free)
    mstar = deepest_relevant(temporal, bm.rel)                                               # [b, t, L+1]
    joints = [None] * N_TENSORS
    for tt in range(N_TENSORS) if JOINT_CAPACITY and (JOINT_WINDOWED or not bm.input_windowed) else ():
        top = int(mstar[:, tt, 2:L].max(initial=-1))              # the deepest level any row indexes
        if top >= 1:
            joints[tt] = joint_factors(bm, keep_table, batch,
                                       [int(d) for d in np.flatnonzero(free & ~bm.rel[tt] & (bm.dims > 1))], top)
    if not taus and all(j is None for j in joints):
        return None
    b, K = temporal.shape[0], keep_table.shape[0]
    F = np.ones((b, K, N_TENSORS, L + 1))
    rows = np.arange(b)
    for tt in range(N_TENSORS):
        for c in range(2, L):
            m = mstar[:, tt, c]
            on = m >= 1
            if not on.any():
                continue
            for d, tau in taus.items():
                if bm.rel[tt][d]:
                    continue
                F[:, :, tt, c] *= np.where(on[:, None], tau[rows, :, np.maximum(m, 0)], 1.0)
            if joints[tt] is not None:
                joint = np.where(on[:, None], joints[tt][rows, :, np.maximum(m, 0)], 1.0)
                F[:, :, tt, c] = np.maximum(F[:, :, tt, c], joint)
    return F if (F > 1).any() else None


def capacity_energy(oe, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray, chain_cost: np.ndarray,
                    free: np.ndarray, mac_energy_pJ: float, keeps: np.ndarray,
                    shared: RelaxedTerms | None = None) -> np.ndarray | None:
    """The energy bound (pJ, with the MACs) of each keep combination ``keeps`` of partial tilings with
    the forced refetch (module docstring), ``[b, k]``; ``None`` when nothing is forced.
    ``chain_cost[b, t, p, c]`` (:class:`search.mapper.bounds.Bounds`) marks the pairs a parent may
    keep and prices the pairs into the MACs; ``shared`` (the same rows and ``free``) gives the batch
    and the relaxed pair terms already computed."""
    bm = oe.bm
    if shared is None:
        shared = RelaxedTerms(bm, bm.batch(temporal, sx, sy), free)
    table = oe.keep_table[keeps]
    F = capacity_refetch(bm, table, temporal, shared.batch, free)
    if F is None:
        return None
    L, g = bm.levels, bm.layer.G
    b = temporal.shape[0]
    total = np.full((b, len(keeps)), mac_energy_pJ)
    for tt in range(N_TENSORS):
        terms = shared.terms[tt]
        scaled = dict(terms, lam=terms["lam"] * F[:, :, tt, :])
        pair = {}
        for pairs in oe.chain_pairs[tt]:
            for p, c in pairs:
                if (p, c) in pair:
                    continue
                if c == L:
                    pair[p, c] = np.broadcast_to(chain_cost[:, tt, p, c][:, None], (b, len(keeps)))
                else:
                    e = pair_energy(bm, tt, p, c, scaled)[0] * g
                    pair[p, c] = np.where(np.isfinite(chain_cost[:, tt, p, c])[:, None], e, np.inf)
        for j, k in enumerate(keeps):
            for p, c in oe.chain_pairs[tt][oe.chain_index[k, tt]]:
                total[:, j] += pair[p, c][:, j]
    return total


__all__ = ["CAPACITY_REFETCH", "JOINT_CAPACITY", "capacity_energy", "capacity_refetch", "forced_factors", "joint_factors"]
