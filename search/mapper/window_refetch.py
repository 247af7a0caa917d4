"""A windowed input's refetch by the K loops of its own ``m*`` level: an order term of partial tilings.

The compulsory traffic of :mod:`search.mapper.bounds` ("Compulsory traffic", the refetch
``Lambda'_c``) counts, for a windowed input kept at ``c``, the K loops of the levels *above* ``m*``,
the deepest level with an active loop over ``Rel_I`` (N or C) above ``c``; a K loop of level ``m*``
itself is left out, as the order of that level is not known. The level-order bound
(:mod:`search.mapper.partial_orders`) enumerates that order, but the input's ``Rel`` count there is
tiny (``REL = N C``) and its compulsory floor does not see the order, so a partial tiling with K and
C both at DRAM lets the inputs dodge the K loop (C inside it) and the Outputs dodge the C loop (C
inside K) at once. This module charges the first (:func:`k_outside`) and prices the order choice
at every split (:func:`order_excess`).

**Claim 1** (:func:`k_outside`). Fix a partial tiling, a completion and a pair ``(p, c)`` of the
windowed input's keepers with ``m = m*_a(c)``, the deepest level ``< c`` with an active assigned
loop over ``Rel_I``; let ``o`` be the completion's order of level ``m`` restricted to the assigned
active loops. If K's loop of level ``m`` is active and outside the first assigned active ``Rel_I``
loop of ``o`` (not in ``prefix_I(o)``, :func:`search.mapper.order_classes.prefix_masks`), it
encloses that active ``Rel_I`` loop (free loops of level ``m`` only come between), so the argument
of "Compulsory traffic" holds for it: each of its iterations ends and begins with tiles that differ
in a coordinate of a single-dimension axis (N or C) and share no element; every element used in
the next iteration is absent from ``c`` at some step in between and arrives again; the iterations
use the same elements (K moves no input axis). Its factor multiplies ``Lambda'_c`` (the K loops of
the levels above ``m``, and those of the completion's deeper ``m*`` if a free ``Rel_I`` loop makes
it deeper: then the K loop of level ``m`` is above it and counts anyway), so the compulsory reads
of ``p`` and fills of ``c`` may take ``Lambda'_c t_{m,K}``; with K in the prefix, ``Lambda'_c``.
The factor falls as prefix sets grow, like every other term of the level-order bound, so the
maximal classes still cover every order.

**Claim 2** (:func:`order_excess`). The split bound of a keep combination
(:func:`search.mapper.partial_orders.partial_order_bounds`, ``SPLIT_KEEPS``) sums pair costs priced
per split ``z``; a pair's cost is its parent's side (reads, or the Outputs' updates and reads, of
``p``) plus its child's (fills of ``c``), each a maximum of terms rising with ``Lambda`` and of
floors. For ``p = 0`` the parent's side does not depend on the split (``SI_0 = 1``: no fanout above
level 0, and the split's replication ``max(1, m_t / prod_{m >= 0} cap_m) = 1``; the window factors
and the sweep floor do not read the split), and it holds with the completion's order in place of
the relaxed one per level, the child's side at least its plain value. So a completion with split
``z``, keep combination ``k`` and order ``o_m`` at each level spends at least the split's plain
chain sum plus ``sum_m (P_{k,m}(o_m) - P_{k,m}(plain))``, ``P_{k,m}`` the parent's side of the pairs
of ``k``'s chains with ``p = 0`` attached to level ``m``, and at least the plain sum plus ``sum_m
min_o`` of that excess (the excess of a non-maximal class is at least that of a maximal class
containing its saved sets). The excess is taken as one more ``extra`` term beside the capacity and
confinement excess (the largest of them, not their sum: each raises some of the same pairs).
"""

from __future__ import annotations

import numpy as np

from formulation.axes import N_TENSORS, Dim, Tensor
from search.mapper.order_classes import level_groups, pad_orders
from search.mapper.pair_terms import pair_energy

#: Whether partial tilings' level-order bound charges a windowed input the K loops of its ``m*`` level
#: outside its ``Rel_I`` loop, and the split bound the order excess of the pairs out of DRAM (module
#: docstring); off is weaker, still valid.
WINDOW_REFETCH = True


def k_outside(temporal: np.ndarray, classes_of, level: int) -> np.ndarray:
    """``[b, o]``: ``t_{level,K}`` for the orders whose input prefix leaves K's loop of ``level`` out, else 1
    (module docstring, claim 1). ``classes_of(active)`` gives a level's class masks (the maximal
    classes, :func:`search.mapper.order_classes.prefix_classes`); the columns are those of
    :func:`search.mapper.order_classes.level_savings` (the same ``level_groups`` and padding)."""
    groups, n = level_groups(temporal, level, classes_of)
    out = np.ones((temporal.shape[0], n))
    for rows, masks in groups:
        k = temporal[rows, level, Dim.K].astype(np.float64)
        out[rows] = pad_orders(np.where(masks[None, :, Tensor.I, Dim.K], 1.0, k[:, None]), n)   # [r, o]
    return out


def scaled_compulsory(terms: dict, factor: np.ndarray, c: int) -> dict:
    """The input's pair terms with its compulsory reads and fills into ``c`` times ``factor[b, o]``."""
    reads = terms["comp_reads"] * np.ones((1, factor.shape[1], 1, 1))
    fills = terms["comp_fills"] * np.ones((1, factor.shape[1], 1, 1))
    reads[:, :, :, c] *= factor[:, :, None]
    fills[:, :, :, c] *= factor[:, :, None]
    return dict(terms, comp_reads=reads, comp_fills=fills)


def _parent_energy(bm, tt: int, p: int, reads, updates) -> np.ndarray:
    lv = bm.arch.levels[p]
    return (reads * lv.read_energy_pJ + updates * (lv.update_energy_pJ if tt == Tensor.O else 0.0)) / lv.block_size


def order_excess(oe, mstar: np.ndarray, chain_cost: np.ndarray, words_level: list, shared,
                 keeps: np.ndarray) -> np.ndarray | None:
    """``[b, k]``: ``sum_m min_o`` of the excess of the parent's side of the pairs out of level 0 over
    their plain cost (pJ, with ``G``), per keep combination ``keeps`` (module docstring, claim 2);
    ``words_level[m][3, b, t, p, c, o]`` the per-order words of
    :meth:`search.mapper.order_energy.OrderEnergy.pair_costs`, ``mstar[b, t, c]`` the levels the
    pairs are attached to (:func:`search.mapper.order_classes.deepest_relevant`); ``None`` when
    nothing varies."""
    bm, L = oe.bm, oe.levels
    g = bm.layer.G
    b = mstar.shape[0]
    finite = np.isfinite(chain_cost)
    total = np.zeros((b, len(keeps)))
    hit = False
    for m, words in enumerate(words_level):
        delta = np.zeros((b, N_TENSORS, L + 1, L + 1, words.shape[-1]))
        for tt in range(N_TENSORS):
            for c in range(1, L):
                on = (mstar[:, tt, c] == m) & finite[:, tt, 0, c]
                if not on.any():
                    continue
                _, r0, u0, _ = pair_energy(bm, tt, 0, c, shared.terms[tt], counts=True)
                plain = _parent_energy(bm, tt, 0, np.broadcast_to(r0, (b, 1)), np.broadcast_to(u0, (b, 1))) * g
                here = _parent_energy(bm, tt, 0, words[0, :, tt, 0, c], words[1, :, tt, 0, c])
                delta[:, tt, 0, c] = np.where(on[:, None], here - plain, 0.0)
                hit = True
        total += oe._per_keep(delta, keeps).min(axis=2)
    return np.maximum(total, 0.0) if hit else None


__all__ = ["WINDOW_REFETCH", "k_outside", "order_excess", "scaled_compulsory"]
