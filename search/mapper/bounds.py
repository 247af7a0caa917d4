"""Optimistic bounds on energy and cycles of every mapping that completes a partial tiling.

A *partial tiling* fixes the factors (temporal, spatial X/Y at every level) of some dimensions,
the *assigned* ones; the others are free. :func:`tiling_bounds` returns, for a batch of partial
tilings, numbers no mapping completing them (any factors of the free dimensions, any loop order,
spatial order and bypass) can beat. With every dimension assigned it bounds the mappings of one
tiling. Notation of :mod:`formulation.model.nest` and :mod:`formulation.model.exact`; ``U`` the
free dimensions, ``cap_m = floor(FX_m / prod x_m) * floor(FY_m / prod y_m)`` the fanout left at
level ``m``, so ``prod_{d in U} s_{m,d} <= cap_m``. Everything below is per group; energies and
cycles are multiplied by ``G`` at the end.

**Arrivals** (per instance of storage level ``c``). With ``Rel`` the dimensions that move the
tensor along an axis no other dimension moves (all relevant ones for Weights and Outputs, and for
Inputs without a window; N, C and the non-window pair for a windowed input, see
:mod:`search.mapper.orders`), the arrivals are at least ``tile * prod_{j <= j*} f_j`` for *every*
order, ``j*`` the innermost active loop above ``c`` over ``Rel`` (equality without a window; with
one, the loops inside ``j*`` add non-negative deltas). The loops at or outside ``j*`` include every
``Rel`` loop above ``c`` and every loop of the levels above ``m*``, the deepest level with an
active ``Rel`` loop. With single-dimension axes spanning ``>= e`` and ``e_{c,d} prod_{m<c} t_{m,d}
= D_d / prod_{m<c} s_{m,d}``::

    a_c >= W_c * P_c * Lambda_c
    P_c = prod_{d in Rel, assigned} D_d / prod_{m<c} s_{m,d}  *  prod_{d in Rel cap U} D_d / min(prod_{m<c} cap_m, prod_{Rel cap U} D_d)
    Lambda_c = prod_{m < m*_assigned} prod_{d not in Rel, assigned} t_{m,d}

``W_c`` is 1, or for a windowed input the product of its window-axis spans with the free
extents at 1 (spans grow with extents). Free dimensions can only make ``m*`` deeper and add
factors ``>= 1``, so using the assigned ones is a lower bound. At the MACs the "arrivals" are the
compute cycles ``prod_{m,d} t_{m,d} >= prod_assigned t * prod_U D_d / min(prod_m cap_m, prod_U D_d)``.

**Accesses** between a parent ``p`` and the next level ``c`` below it that keeps the tensor (the
levels between bypass it), with ``n_p >= prod_{m<p, assigned} s`` instances and
``X(p,c) >= prod_{p<=m<c} prod_{d in Rel, assigned} s_{m,d}`` distinct children (multicast; a
windowed axis adds a factor ``>= 1``):

* Weights/Inputs: ``reads_p = n_p X a_c``, ``fills_c = n_c a_c``;
* Outputs: ``updates_p = n_c a_c / Rd = n_p X a_c``; ``reads_p = updates_p - n_p u_p = n_p X
  (a_c - u_c)`` and ``fills_c = n_c (a_c - u_c)`` with the partition ``u_c = P_c``, so
  ``a_c - u_c >= P_c (Lambda_c - 1)``. Above the MACs ``updates_p = MACs / Rd(p, L)`` and
  ``n_p u_p = |O| prod_{m<p} s_{m, C R S}``, bounded with the free factors at their largest.
* Links (windowed inputs only, when the fanout at ``c - 1`` is > 1): they lower the parent's
  reads to ``n_p (U a_c - R)`` or rescale them by ``(P - R) / P`` (:mod:`formulation.model.links`);
  since ``R <= (U - U_rest) sum |D| w`` both stay ``>= n_p X |E_c|``, the child tile ``E_c``.
  They lower the child's fills only when level ``c - 1`` has several instances: then 0 is used.

**Energy** ``>= MACs e_mac + G sum_{l,t} (count / B_l) e``, since ``n ceil(x / (n B)) >= x / B``.
Per tensor the cheapest chain of keeping levels is found by dynamic programming over ``c``; a level
may keep a tensor only if its hardware allows it and the tensor's tile alone fits (tiles grow
with the factors of free dimensions, so a tile that overflows now overflows in every completion:
``"capacity"``). **Cycles** ``>= G compute`` and, at an outermost level with one instance,
``>= G (sum_t min_c reads_0) / read_bw`` and ``G min_c updates_0 / write_bw`` (a throttled level
takes ``ceil(words / bw)`` cycles). A relative slack of ``1e-9`` absorbs floating point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulation.axes import DIMS, N_AXES, N_TENSORS, RELEVANCE, Dim, Tensor, projection
from formulation.goals import Objective
from formulation.specs.types import Architecture, Layer
from search.mapper.orders import non_window_dims_of_inputs
from search.mapper.space import windowed_axes

SLACK = 1.0 - 1e-9


@dataclass(frozen=True)
class Bounds:
    """Per partial tiling: ``energy_pJ``, ``cycles`` and the per-tensor chain costs.

    ``chain_cost[b, t, p, c]`` bounds the energy (pJ, already times ``G``) tensor ``t`` spends
    between a keeping parent ``p`` and the next keeping level ``c`` (``c = L``: the MACs), ``inf``
    where ``p`` may not keep ``t``; ``min_chain[b, t]`` is the cheapest chain's cost.
    """

    energy_pJ: np.ndarray
    cycles: np.ndarray
    chain_cost: np.ndarray
    min_chain: np.ndarray
    mac_energy_pJ: float

    def value(self, objective: Objective, clock_GHz: float) -> np.ndarray:
        return objective_of(objective, self.energy_pJ, self.cycles, clock_GHz)


def objective_of(objective: Objective, energy_pJ, cycles, clock_GHz: float):
    """The objective from energy (pJ) and cycles: energy, latency (s) or EDP (pJ s)."""
    seconds = np.asarray(cycles, dtype=np.float64) / (clock_GHz * 1e9)
    if objective is Objective.ENERGY:
        return np.asarray(energy_pJ, dtype=np.float64)
    if objective is Objective.LATENCY:
        return seconds
    if objective is Objective.EDP:
        return np.asarray(energy_pJ, dtype=np.float64) * seconds
    raise ValueError(f"objective = {objective.value!r}: the exact mapper minimizes energy, latency or edp")


class BoundModel:
    """The fixed part of the bounds for one (layer, architecture)."""

    def __init__(self, layer: Layer, arch: Architecture) -> None:
        self.layer, self.arch = layer, arch
        self.levels = len(arch.levels)
        self.dims = np.array(layer.dims, dtype=np.int64)
        self.proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
        self.windowed = windowed_axes(layer)
        self.input_windowed = any(self.windowed)
        rel = RELEVANCE.copy()
        if self.input_windowed:
            nw = non_window_dims_of_inputs(self.windowed)
            rel[Tensor.I] = [int(d) in nw for d in DIMS]
        self.rel = rel
        # window axes of the input: the axes moved by two dimensions of bound > 1
        self.window_axes = [a for a in range(N_AXES) if self.input_windowed and
                            (((self.proj[Tensor.I, a] != 0) & (self.dims > 1)).sum() >= 2)]
        self.fan_x = np.array([arch.fanout(l)[0] for l in range(self.levels)], dtype=np.int64)
        self.fan_y = np.array([arch.fanout(l)[1] for l in range(self.levels)], dtype=np.int64)
        self.sizes = np.array([lv.size_words if lv.size_words is not None else np.iinfo(np.int64).max
                               for lv in arch.levels], dtype=np.float64)
        self.hw_keeps = np.array([[t in lv.keeps for t in range(N_TENSORS)] for lv in arch.levels], dtype=bool)
        self.tensor_words = np.array([np.prod(self.dims[RELEVANCE[t]]) for t in range(N_TENSORS)], dtype=np.float64)

    def _free_product(self, free: np.ndarray, subset: np.ndarray) -> float:
        sel = free & subset
        return float(np.prod(self.dims[sel])) if sel.any() else 1.0

    def bounds(self, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray, assigned: np.ndarray) -> Bounds:
        """Bounds for a batch of partial tilings ``[b, L, 7]`` (free dimensions hold 1); module docstring."""
        L = self.levels
        b = temporal.shape[0]
        free = ~np.asarray(assigned, dtype=bool)
        s = (sx * sy).astype(np.float64)
        t = temporal.astype(np.float64)
        cap = (self.fan_x[None] // sx.prod(axis=2)) * (self.fan_y[None] // sy.prod(axis=2))  # [b, L]
        cap_cum = np.concatenate([np.ones((b, 1)), np.cumprod(cap.astype(np.float64), axis=1)], axis=1)  # prod_{m<c}
        all_dims = np.ones(len(DIMS), dtype=bool)
        # spatial above level c, assigned dims: [b, L+1, 7]
        s_above = np.concatenate([np.ones((b, 1, len(DIMS))), np.cumprod(s, axis=1)], axis=1)
        n_lb = s_above.prod(axis=2)                                           # [b, L+1] instances
        ext = np.ones((b, L + 1, len(DIMS)))                                  # extents, free dims at 1
        for l in range(L - 1, -1, -1):
            ext[:, l] = ext[:, l + 1] * t[:, l] * s[:, l]
        spans = 1 + np.einsum("tad,bld->blta", self.proj, ext - 1)            # [b, L+1, t, a]
        tile_lb = spans.prod(axis=-1)                                         # [b, L+1, t]
        free_all = self._free_product(free, all_dims)
        compute_lb = t.prod(axis=(1, 2)) * free_all / np.minimum(cap_cum[:, L], free_all)
        arrive = np.zeros((b, L + 1, N_TENSORS))
        part = np.zeros((b, L + 1, N_TENSORS))
        xrel = np.zeros((b, N_TENSORS, L + 1, L + 1))                         # X(p, c) lower bound
        for tt in range(N_TENSORS):
            rel = self.rel[tt]
            fp = self._free_product(free, rel)
            part_assigned = np.where(rel & ~free, self.dims[None, None, :] / s_above, 1.0).prod(axis=2)  # [b, L+1]
            P = part_assigned * fp / np.minimum(cap_cum, fp)
            part[:, :, tt] = P
            active_rel = ((t > 1) & (rel & ~free)[None, None, :]).any(axis=2)     # [b, L]
            irr = np.where((~rel & ~free)[None, None, :], t, 1.0).prod(axis=2)   # [b, L]
            irr_cum = np.concatenate([np.ones((b, 1)), np.cumprod(irr, axis=1)], axis=1)  # prod_{m<c}
            for c in range(1, L):
                deeper = np.where(active_rel[:, :c], np.arange(c)[None, :], -1).max(axis=1)  # m*, -1: none
                lam = np.where(deeper >= 0, irr_cum[np.arange(b), np.maximum(deeper, 0)], 1.0)
                win = spans[:, c, tt][:, self.window_axes].prod(axis=1) if (tt == Tensor.I and self.window_axes) else 1.0
                arrive[:, c, tt] = win * P[:, c] * lam
            arrive[:, L, tt] = compute_lb
            rs = np.where((rel & ~free)[None, None, :], s, 1.0).prod(axis=2)   # [b, L]
            for p in range(L):
                acc = np.ones(b)
                for c in range(p + 1, L + 1):
                    acc = acc * rs[:, c - 1]
                    xrel[:, tt, p, c] = acc
        cost = np.full((b, N_TENSORS, L + 1, L + 1), np.inf)
        words0 = np.full((b, N_TENSORS, L + 1), np.inf)  # per-tensor reads (W, I) or updates (O) at level 0
        for tt in range(N_TENSORS):
            for p in range(L):
                if p > 0:
                    ok = self.hw_keeps[p, tt] & (tile_lb[:, p, tt] <= self.sizes[p])
                else:
                    ok = np.ones(b, dtype=bool)
                for c in range(p + 1, L + 1):
                    e = self._pair_energy(tt, p, c, n_lb, xrel, arrive, part, tile_lb, s, free, cap_cum, cap)
                    cost[:, tt, p, c] = np.where(ok, e[0], np.inf)
                    if p == 0:
                        words0[:, tt, c] = e[1]
        g = self.layer.G
        cost *= g
        best = np.full((b, N_TENSORS, L + 1), np.inf)
        best[:, :, 0] = 0.0
        for c in range(1, L + 1):
            best[:, :, c] = (best[:, :, :c] + cost[:, :, :c, c]).min(axis=2)
        min_chain = best[:, :, L]
        mac = float(self.layer.macs * self.arch.mac.energy_pJ)
        energy = (mac + min_chain.sum(axis=1)) * SLACK
        cycles = compute_lb * g
        outer = self.arch.levels[0]
        if outer.instances == 1:
            reads0 = words0[:, [Tensor.W, Tensor.I]].min(axis=2).sum(axis=1) * g
            writes0 = words0[:, Tensor.O].min(axis=1) * g
            if outer.read_bw_words is not None:
                cycles = np.maximum(cycles, reads0 / outer.read_bw_words)
            if outer.write_bw_words is not None:
                cycles = np.maximum(cycles, writes0 / outer.write_bw_words)
        return Bounds(energy, cycles * SLACK, cost, min_chain, mac)

    def _pair_energy(self, tt, p, c, n_lb, xrel, arrive, part, tile_lb, s, free, cap_cum, cap):
        """(energy without G, words at the parent) between parent ``p`` and next keeper ``c`` of tensor ``tt``."""
        L = self.levels
        lv_p = self.arch.levels[p]
        per_p = 1.0 / lv_p.block_size
        x = xrel[:, tt, p, c]
        a = arrive[:, c, tt]
        if tt in (Tensor.W, Tensor.I):
            reads = n_lb[:, p] * x * a
            fills = n_lb[:, c] * a if c < L else 0.0
            if tt == Tensor.I and self.input_windowed and c < L and (self.fan_x[c - 1] * self.fan_y[c - 1]) > 1:
                reads = n_lb[:, p] * x * tile_lb[:, c, tt]
                if self.arch.levels[c - 1].instances > 1:
                    fills = 0.0
            e = reads * per_p * lv_p.read_energy_pJ
            if c < L:
                lv_c = self.arch.levels[c]
                e = e + fills / lv_c.block_size * lv_c.fill_energy_pJ
            return e, reads
        red = ~self.rel[Tensor.O]
        if c < L:
            updates = n_lb[:, p] * x * a
            excess = np.maximum(a - part[:, c, tt], 0.0)  # a_c - u_c >= P_c (Lambda_c - 1)
            reads = n_lb[:, p] * x * excess
            fills = n_lb[:, c] * excess
            lv_c = self.arch.levels[c]
            e_child = fills / lv_c.block_size * lv_c.fill_energy_pJ
        else:
            fr = self._free_product(free, red)
            red_below = np.where((red & ~free)[None, None, :], s[:, p:], 1.0).prod(axis=(1, 2))
            cap_below = np.prod(cap[:, p:].astype(np.float64), axis=1)
            updates = self.layer.macs / self.layer.G / (red_below * np.minimum(cap_below, fr))
            red_above = np.where((red & ~free)[None, None, :], s[:, :p], 1.0).prod(axis=(1, 2))
            held = self.tensor_words[Tensor.O] * red_above * np.minimum(cap_cum[:, p], fr)
            reads = np.maximum(updates - held, 0.0)
            e_child = 0.0
        e = (updates * lv_p.update_energy_pJ + reads * lv_p.read_energy_pJ) * per_p + e_child
        return e, updates


__all__ = ["BoundModel", "Bounds", "objective_of", "SLACK"]
