"""One tensor's pair costs between consecutive keepers: the terms every partial-tiling bound is built from.

:mod:`search.mapper.bounds` bounds a partial tiling's energy by the cheapest chain of keepers per
tensor (:mod:`search.mapper.chains`); a link of that chain is a *pair* ``(p, c)``: the parent ``p``
that keeps tensor ``t`` and the next level ``c`` below that keeps it (``c = L``: the MACs). The
math is the bounds module's docstring ("Arrivals", "Compulsory traffic", "Splits", "Innermost
loop"); here are the terms it names, per tensor:

* :func:`tensor_terms`: the split-independent and split-dependent factors of a pair's counts
  (``REL``, the spatial irrelevant products ``SI_p``, ``Lambda_c`` and ``Lambda_full_c``, the
  MAC-level words, ``T_irr``, the window and sweep factors of a windowed input, the compulsory
  floors);
* :func:`pair_energy`: the pair's energy (reads and fills, or the Outputs' updates, read-modify-write
  and fills) from those terms; every other bound (:mod:`search.mapper.order_energy`,
  :mod:`search.mapper.capacity`, :mod:`search.mapper.confinement`, :mod:`search.mapper.partial_orders`)
  prices a pair through it with a larger ``Lambda``, which it never lowers;
* :func:`tensor_costs`: the table ``cost[b, key, p, c]`` over every pair, the input of the chains.

A windowed input's pairs also take the per-instance floors of :mod:`search.mapper.instance_union`.
The flag :data:`SWEEP_REFETCH` switches the sweep floor of a windowed input's parent reads
(:mod:`search.mapper.sweep`); off is weaker, still valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from formulation.axes import RELEVANCE, Tensor
from search.mapper.instance_union import instance_floors
from search.mapper.splits import TensorKeys
from search.mapper.sweep import sweep_reads
from search.mapper.window import window_children, window_mac_words

if TYPE_CHECKING:
    from search.mapper.bounds import BoundModel, _Batch

#: Whether a windowed input's parent reads are raised to the sweep bound (:mod:`search.mapper.sweep`).
SWEEP_REFETCH = True


def tensor_costs(bm: BoundModel, tt: int, batch: _Batch, free: np.ndarray, keys: TensorKeys):
    """``cost[b, key, p, c]`` (``Lambda_c``), ``cost_full`` (``Lambda_full_c`` at the enumerated
    levels) and the words at level 0, least over the next keeper, ``[b, key]``; without ``G``."""
    L = bm.levels
    b = batch.t.shape[0]
    terms = tensor_terms(bm, tt, batch, free, keys)
    shape = (b, keys.count, L + 1, L + 1)
    cost = np.full(shape, np.inf)
    cost_full = np.full(shape, np.inf) if bm.forced_levels else cost
    words0 = np.full((b, keys.count), np.inf)
    for p in range(L):
        ok = batch.ok[:, tt, p][:, None]
        for c in range(p + 1, L + 1):
            e, words = pair_energy(bm, tt, p, c, terms)
            cost[:, :, p, c] = np.where(ok, e, np.inf)
            if bm.forced_levels and 1 <= c < L:
                e_full, _ = pair_energy(bm, tt, p, c, dict(terms, lam=terms["lam_full"]))
                cost_full[:, :, p, c] = np.where(ok, e_full, np.inf)
            if p == 0:
                words0 = np.minimum(words0, np.broadcast_to(words, words0.shape))
    return cost, cost_full, words0

def tensor_terms(bm: BoundModel, tt: int, batch: _Batch, free: np.ndarray, keys: TensorKeys) -> dict:
    """``REL``, ``SI_p`` (p = 0..L), ``Lambda_c W_c`` (c = 1..L-1), the MAC-level words and
    ``T_irr``; the split-dependent ones with a key axis: ``si[b, key, p]``, ``mac_words[b, key, p]``,
    ``t_irr[b, key]`` (:mod:`search.mapper.bounds`, "Splits")."""
    L = bm.levels
    t, s, spans, cap_below = batch.t, batch.s, batch.spans, batch.cap_below
    b = t.shape[0]
    rel = bm.rel[tt]
    irr_a = ~rel & ~free
    rel_total = float(np.prod(bm.dims[rel]))
    si = np.concatenate([np.ones((b, 1)), np.cumprod(np.where(irr_a[None, None], s, 1.0).prod(axis=2), axis=1)],
                        axis=1)                                            # [b, L+1]
    si = si[:, None, :] * np.maximum(1.0, keys.lo[None, :, None] / cap_below[:, None, :])
    active_rel = ((t > 1) & (rel & ~free)[None, None, :]).any(axis=2)     # [b, L]
    irr_t = np.where(irr_a[None, None], t, 1.0).prod(axis=2)              # [b, L]
    irr_cum = np.concatenate([np.ones((b, 1)), np.cumprod(irr_t, axis=1)], axis=1)
    lam = np.ones((b, L + 1))
    for c in range(1, L):
        deeper = np.where(active_rel[:, :c], np.arange(c)[None, :], -1).max(axis=1)  # m*, -1: none
        lam[:, c] = np.where(deeper >= 0, irr_cum[np.arange(b), np.maximum(deeper, 0)], 1.0)
        if tt == Tensor.I and bm.window_axes:
            lam[:, c] *= spans[:, c, tt][:, bm.window_axes].prod(axis=1)
    # compulsory traffic, refetched by the loops irrelevant in the plain sense (K for a windowed
    # input) above m* (:mod:`search.mapper.bounds`, "Compulsory traffic"): Lambda'_c and SI'_p
    irr_o = ~RELEVANCE[tt] & ~free
    irr_o_cum = np.concatenate([np.ones((b, 1)), np.cumprod(np.where(irr_o[None, None], t, 1.0).prod(axis=2),
                                                             axis=1)], axis=1)
    lam_comp = np.ones((b, L + 1))
    for c in range(1, L):
        deeper = np.where(active_rel[:, :c], np.arange(c)[None, :], -1).max(axis=1)
        lam_comp[:, c] = np.where(deeper >= 0, irr_o_cum[np.arange(b), np.maximum(deeper, 0)], 1.0)
    si_comp = np.concatenate([np.ones((b, 1)), np.cumprod(np.where(irr_o[None, None], s, 1.0).prod(axis=2),
                                                            axis=1)], axis=1)
    comp_reads = bm.compulsory[tt] * si_comp[:, :, None] * lam_comp[:, None, :]      # [b, p, c]
    comp_fills = bm.compulsory[tt] * (si_comp * lam_comp)[:, None, :]                 # [b, 1, c]
    lam_full = irr_cum.copy()                                              # all assigned irr loops above c
    if tt == Tensor.I and bm.window_axes:
        lam_full[:, 1:L] *= spans[:, 1:L, tt][:, :, bm.window_axes].prod(axis=2)
    fi = bm.free_product(free, ~rel)
    # MAC level: REL * prod_{d irr} D_d / prod_{m>=p} s_{m,d}
    irr_s_below = np.cumprod(np.where(irr_a[None, None], s, 1.0).prod(axis=2)[:, ::-1], axis=1)[:, ::-1]
    irr_dims = float(np.prod(bm.dims[irr_a])) if irr_a.any() else 1.0
    hi = keys.hi[None, :, None]
    mac_words = (rel_total * irr_dims / irr_s_below)[:, None, :] * fi / np.minimum(cap_below[:, None, :L], hi)
    t_irr = irr_t.prod(axis=1)[:, None] * fi / np.minimum(cap_below[:, :1], keys.hi[None, :])
    xwin = np.ones((b, L + 1, L + 1))                                      # xwin[:, p, c]
    sweep = inst = None
    if tt == Tensor.I and bm.window_axes:
        inst = instance_floors(bm, s, free, cap_below, keys)
        xwin = window_children(bm, s, free)
        if SWEEP_REFETCH:
            sweep = sweep_reads(bm.layer, bm.proj, t, s, batch.ext, batch.cap, free, bm.dims)[:, None]
        mac_words = window_mac_words(bm, s, free, cap_below, keys, t=t)
    return {"rel": rel_total, "si": si, "lam": lam[:, None, :], "lam_full": lam_full[:, None, :],
            "mac_words": mac_words, "t_irr": t_irr, "xwin": xwin[:, None],
            "comp_reads": comp_reads[:, None], "comp_fills": comp_fills[:, None], "sweep": sweep,
            "instance": inst}

def pair_energy(bm: BoundModel, tt: int, p: int, c: int, terms: dict, counts: bool = False):
    """(energy without ``G``, words at the parent), ``[b, key]``, between parent ``p`` and next
    keeper ``c`` of tensor ``tt``; with ``counts``, (energy, reads of ``p``, updates of ``p``,
    fills of ``c``)."""
    L = bm.levels
    lv_p = bm.arch.levels[p]
    rel, si, lam = terms["rel"], terms["si"], terms["lam"]
    fill_e = 0.0
    if c < L:
        lv_c = bm.arch.levels[c]
        fill_e = lv_c.fill_energy_pJ / lv_c.block_size
    comp = bm.compulsory[tt]
    comp_p = terms["comp_reads"][:, :, p, c] if c < L else comp     # words at the parent
    comp_c = terms["comp_fills"][:, :, 0, c] if c < L else 0.0      # fills of the child
    if tt in (Tensor.W, Tensor.I):
        if c < L:
            reads = np.maximum(rel * si[:, :, p] * lam[:, :, c] * terms["xwin"][:, :, p, c], comp_p)
            if terms["sweep"] is not None:
                reads = np.maximum(reads, terms["sweep"][:, :, p, c])
            fills = np.maximum(rel * si[:, :, c] * lam[:, :, c], comp_c)
            if terms.get("instance") is not None and c in terms["instance"][0]:  # search.mapper.instance_union
                reads = np.maximum(reads, terms["instance"][1][(p, c)])
                fills = np.maximum(fills, terms["instance"][0][c])
            if tt == Tensor.I and bm.input_windowed and bm.fan_x[c - 1] * bm.fan_y[c - 1] > 1 \
                    and bm.arch.levels[c - 1].instances > 1:
                fills = 0.0  # links may lower the child's fills
        else:
            reads, fills = np.maximum(terms["mac_words"][:, :, p], comp) * bm.mac_fanout_keep, 0.0
        e = reads * lv_p.read_energy_pJ / lv_p.block_size + fills * fill_e
        return (e, reads, 0.0, fills) if counts else (e, reads)
    if c < L:
        updates = np.maximum(rel * si[:, :, p] * lam[:, :, c], comp_p)
        reads = rel * si[:, :, p] * (lam[:, :, c] - 1)
        fills = rel * si[:, :, c] * (lam[:, :, c] - 1)
    else:
        updates = np.maximum(terms["mac_words"][:, :, p], comp) * bm.mac_fanout_keep
        reads = rel * si[:, :, p] * (terms["t_irr"] - 1) * bm.mac_fanout_keep
        fills = 0.0
    e = (updates * lv_p.update_energy_pJ + reads * lv_p.read_energy_pJ) / lv_p.block_size + fills * fill_e
    return (e, reads, updates, fills) if counts else (e, updates)


__all__ = ["SWEEP_REFETCH", "pair_energy", "tensor_costs", "tensor_terms"]
