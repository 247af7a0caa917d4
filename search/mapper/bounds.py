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
levels between bypass it). With ``n_p = prod_{m<p,d} s_{m,d}`` instances and ``X(p,c) >=
prod_{p<=m<c} prod_{d in Rel} s_{m,d}`` distinct children (multicast; a windowed axis adds a
factor ``>= 1``), the partition ``u_c = prod_{d in Rel} D_d / prod_{m<c} s_{m,d}`` cancels the
spatial factors of ``Rel``: ``n_p X(p,c) u_c = REL * SI_p`` with ``REL = prod_{d in Rel} D_d`` and
``SI_p = prod_{m<p} prod_{d not in Rel} s_{m,d}`` (free factors at 1 are a lower bound). So

* Weights/Inputs: ``reads_p = n_p X a_c >= REL SI_p Lambda_c W_c Xw``, ``fills_c = n_c a_c >=
  REL SI_c Lambda_c W_c``, where ``Xw >= 1`` bounds the distinct children along the window axes
  of a windowed input: per axis, the largest ``prod_{p<=m<c} s_{m,d}`` of one dimension moving it
  (children that differ only in that dimension's spatial indices sit at distinct offsets, since
  every spatial shift is positive and the levels nest; :func:`formulation.model.nest.distinct_children`
  counts the union of offsets, which contains them; through several fanouts it multiplies each
  fanout's own count, and ``prod_k s_{k,d} <= prod_k max_d s_{k,d}``);
* Outputs: ``updates_p = n_c a_c / Rd = n_p X a_c >= REL SI_p Lambda_c``; ``reads_p = updates_p -
  n_p u_p = n_p X (a_c - u_c) >= REL SI_p (Lambda_c - 1)``, ``fills_c = n_c (a_c - u_c) >=
  REL SI_c (Lambda_c - 1)``;
* above the MACs (``c = L``, arrivals = compute ``prod_{m,d} t``): ``n_p X compute >= REL
  prod_{d not in Rel} D_d / prod_{m>=p} s_{m,d}`` (reads of Weights, updates of Outputs; for a
  windowed input see :meth:`BoundModel._window_mac_words`: spatial window factors are not multicast);
  with the free factors the denominator is at most ``min(prod_{m>=p} cap_m, prod D_d)``. The
  Outputs' reads there are ``REL SI_p (T_irr - 1)``, ``T_irr = prod_m prod_{d not in Rel} t_{m,d}``.
* Links (windowed inputs only, when the fanout at ``c - 1`` is > 1) lower the parent's reads to
  ``n_p (U a_c - R)`` or rescale them by ``(P - R) / P`` (:mod:`formulation.model.links`), where
  ``R`` sums ``(U - U_rest) |D| w <= U |D| w`` over steps that can link. The first tile never
  links, nor does the delta of a loop at or outside ``j*``: it moves a single-dimension axis by
  at least the fanout's span, beyond every difference of child offsets. So the parent still reads
  ``>= n_p U |E| prod_{j <= j*} f_j``, which the bound above does not exceed (the rescaled count,
  rounded, too: ``X a_c (P - R) / P >= X |E| prod_{j <= j*} f_j``, an integer). Links lower the
  child's fills only when level ``c - 1`` has several instances: then 0 is used.
* Links at a fanout into the MACs (the last storage level has a fanout > 1; not so in ``simple``
  or ``eyeriss-like``) forward operands between neighbouring MACs for every tensor and can save
  the last keeper above the MACs nearly all of its reads and updates: the pair ``(p, L)`` is then
  bounded by 0.

**Innermost loop** (joint over the tensors). In a complete mapping, let ``j0`` be the innermost
active temporal loop above storage level ``c`` (levels ``< c``, each level's permutation read
outer to inner) and ``d0`` its dimension. Every tensor ``t`` with ``d0`` in ``Rel_t`` then has
``j* = j0``: every loop above ``c`` is at or outside ``j*``, so ``a_c >= W_c P_c prod_{all loops
above c over d not in Rel} f >= W_c P_c Lambda_full_c`` with ``Lambda_full_c = prod_{m < c}
prod_{d not in Rel, assigned} t_{m,d}`` (free factors at 1; the arrival formula and the links
argument above hold for any ``j*``). So at every level at least the tensors of one *forced set*
``{t : d0 in Rel_t}``, ``d0`` a dimension of bound > 1, pay ``Lambda_full_c`` instead of
``Lambda_c`` in every pair ``(p, c)`` (all pair costs grow with ``Lambda``; with no active loop
above ``c`` both are 1 and any set is exact). Every dimension is relevant to two tensors (a window
dimension only to one once the input's window pair is left out of ``Rel``); a set that contains
another gives a larger cost, so only the minimal sets are tried. The energy bound is the least,
over one minimal set per level ``c = 1 .. min(L - 1, MAX_FORCED_LEVELS)`` (levels not enumerated
use ``Lambda_c``: weaker, still valid), of the summed cheapest chains: the completion's own sets
are among the choices and each tensor's true cost is at least its cheapest chain under them.
The per-keep-set bounds of complete tilings take the same least over the choices
(:meth:`Bounds.forced_chain_costs`, :func:`search.mapper.leaves.keep_set_energy`): a keep set fixes
the chains, and its completions' sets are again among the choices.

**Energy** ``>= MACs e_mac + G sum_{l,t} (count / B_l) e``, since ``n ceil(x / (n B)) >= x / B``.
Per tensor the cheapest chain of keeping levels is found by dynamic programming over ``c``; a level
may keep a tensor only if its hardware allows it and the tensor's tile alone fits (tiles grow
with the factors of free dimensions, so a tile that overflows now overflows in every completion:
``"capacity"``). **Cycles** ``>= G compute`` and, at an outermost level with one instance,
``>= G (sum_t min_c reads_0) / read_bw`` and ``G min_c updates_0 / write_bw`` (a throttled level
takes ``ceil(words / bw)`` cycles). A relative slack of ``1e-9`` absorbs floating point.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from formulation.axes import DIMS, N_AXES, N_TENSORS, RELEVANCE, Dim, Tensor, projection
from formulation.goals import Objective
from formulation.goals import seconds as latency_s
from formulation.specs.types import Architecture, Layer
from search.mapper.orders import non_window_dims_of_inputs
from search.mapper.space import windowed_axes

SLACK = 1.0 - 1e-9
#: Levels (from the outermost storage level below level 0) at which the innermost loop's forced
#: sets are enumerated (``|sets| ** levels`` chain problems per bound); forcing fewer is weaker, still valid.
MAX_FORCED_LEVELS = 3


def _joint_chains(bounds: "Bounds", min_chain: np.ndarray) -> np.ndarray:
    """The least total chain energy over the innermost loop's forced sets (module docstring,
    "Innermost loop"): ``min_v sum_t chains_t(v)``, ``[b]``; without forcing ``sum_t min_chain``."""
    total = min_chain.sum(axis=1)
    joint = None
    for c2 in bounds.forced_chain_costs():
        v = _cheapest_chains(c2).sum(axis=1)
        joint = v if joint is None else np.minimum(joint, v)
    return total if joint is None else np.maximum(total, joint)


def _cheapest_chains(cost: np.ndarray) -> np.ndarray:
    """Per tensor the cheapest chain of keepers from level 0 to the MACs, ``[b, t]``, by dynamic
    programming over ``cost[b, t, p, c]``."""
    b, nt, n, _ = cost.shape
    best = np.full((b, nt, n), np.inf)
    best[:, :, 0] = 0.0
    for c in range(1, n):
        best[:, :, c] = (best[:, :, :c] + cost[:, :, :c, c]).min(axis=2)
    return best[:, :, n - 1]


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
    chain_cost_full: np.ndarray | None = None
    forced_levels: tuple = ()
    forced_sets: tuple = ()

    def forced_chain_costs(self):
        """``chain_cost`` with one minimal forced set per enumerated level paying ``Lambda_full``
        (module docstring, "Innermost loop"), one array per choice; nothing without forcing."""
        if not self.forced_levels:
            return
        for combo in itertools.product(self.forced_sets, repeat=len(self.forced_levels)):
            c2 = self.chain_cost.copy()
            for c, forced in zip(self.forced_levels, combo):
                c2[:, forced, :, c] = self.chain_cost_full[:, forced, :, c]
            yield c2

    def value(self, objective: Objective, clock_GHz: float) -> np.ndarray:
        return objective_of(objective, self.energy_pJ, self.cycles, clock_GHz)


def objective_of(objective: Objective, energy_pJ, cycles, clock_GHz: float):
    """The objective from energy (pJ) and cycles: energy, latency (s) or EDP (pJ s)."""
    seconds = latency_s(np.asarray(cycles, dtype=np.float64), clock_GHz)
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
        # links at a fanout into the MACs may save the last keeper any share of its reads and updates
        self.mac_fanout_keep = 0.0 if self.fan_x[-1] * self.fan_y[-1] > 1 else 1.0
        self.sizes = np.array([lv.size_words if lv.size_words is not None else np.iinfo(np.int64).max
                               for lv in arch.levels], dtype=np.float64)
        self.hw_keeps = np.array([[t in lv.keeps for t in range(N_TENSORS)] for lv in arch.levels], dtype=bool)
        # innermost loop above a level: the tensors it is relevant to (Rel), minimal sets only
        sets = {tuple(bool(self.rel[t][d]) for t in range(N_TENSORS)) for d in DIMS if self.dims[d] > 1}
        self.forced_sets = [np.array(a) for a in sets if any(a) and
                            not any(b != a and all(x <= y for x, y in zip(b, a)) for b in sets)]
        self.forced_levels = list(range(1, min(self.levels, 1 + MAX_FORCED_LEVELS))) if self.forced_sets else []
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
        cap = ((self.fan_x[None] // sx.prod(axis=2)) * (self.fan_y[None] // sy.prod(axis=2))).astype(np.float64)
        cap_below = np.cumprod(cap[:, ::-1], axis=1)[:, ::-1]                # prod_{m>=p} cap_m, [b, L]
        ext = np.ones((b, L + 1, len(DIMS)))                                  # extents, free dims at 1
        for l in range(L - 1, -1, -1):
            ext[:, l] = ext[:, l + 1] * t[:, l] * s[:, l]
        spans = 1 + np.einsum("tad,bld->blta", self.proj, ext - 1)            # [b, L+1, t, a]
        tile_lb = spans.prod(axis=-1)                                         # [b, L+1, t]
        free_all = self._free_product(free, np.ones(len(DIMS), dtype=bool))
        compute_lb = t.prod(axis=(1, 2)) * free_all / np.minimum(cap_below[:, 0], free_all)
        cost = np.full((b, N_TENSORS, L + 1, L + 1), np.inf)
        cost_full = np.full((b, N_TENSORS, L + 1, L + 1), np.inf)  # pairs (p, c) with Lambda_c at its full value
        words0 = np.full((b, N_TENSORS, L + 1), np.inf)  # reads (W, I) or updates (O) at level 0
        for tt in range(N_TENSORS):
            terms = self._tensor_terms(tt, t, s, free, spans, cap_below)
            for p in range(L):
                ok = self.hw_keeps[p, tt] & (tile_lb[:, p, tt] <= self.sizes[p]) if p > 0 else np.ones(b, dtype=bool)
                for c in range(p + 1, L + 1):
                    e, words = self._pair_energy(tt, p, c, terms)
                    cost[:, tt, p, c] = np.where(ok, e, np.inf)
                    if self.forced_levels and 1 <= c < L:
                        e_full, _ = self._pair_energy(tt, p, c, dict(terms, lam=terms["lam_full"]))
                        cost_full[:, tt, p, c] = np.where(ok, e_full, np.inf)
                    if p == 0:
                        words0[:, tt, c] = words
        g = self.layer.G
        cost *= g
        cost_full *= g
        min_chain = _cheapest_chains(cost)
        mac = float(self.layer.macs * self.arch.mac.energy_pJ)
        forced = (cost_full, tuple(self.forced_levels), tuple(self.forced_sets))
        energy = (mac + _joint_chains(Bounds(None, None, cost, min_chain, mac, *forced), min_chain)) * SLACK
        cycles = compute_lb * g
        outer = self.arch.levels[0]
        if outer.instances == 1:
            reads0 = words0[:, [Tensor.W, Tensor.I]].min(axis=2).sum(axis=1) * g
            writes0 = words0[:, Tensor.O].min(axis=1) * g
            if outer.read_bw_words is not None:
                cycles = np.maximum(cycles, reads0 / outer.read_bw_words)
            if outer.write_bw_words is not None:
                cycles = np.maximum(cycles, writes0 / outer.write_bw_words)
        return Bounds(energy, cycles * SLACK, cost, min_chain, mac, *forced)

    def _tensor_terms(self, tt, t, s, free, spans, cap_below) -> dict:
        """``REL``, ``SI_p`` (p = 0..L), ``Lambda_c W_c`` (c = 1..L-1), the MAC-level words and ``T_irr``."""
        L = self.levels
        b = t.shape[0]
        rel = self.rel[tt]
        irr_a = ~rel & ~free
        rel_total = float(np.prod(self.dims[rel]))
        si = np.concatenate([np.ones((b, 1)), np.cumprod(np.where(irr_a[None, None], s, 1.0).prod(axis=2), axis=1)],
                            axis=1)                                            # [b, L+1]
        active_rel = ((t > 1) & (rel & ~free)[None, None, :]).any(axis=2)     # [b, L]
        irr_t = np.where(irr_a[None, None], t, 1.0).prod(axis=2)              # [b, L]
        irr_cum = np.concatenate([np.ones((b, 1)), np.cumprod(irr_t, axis=1)], axis=1)
        lam = np.ones((b, L + 1))
        for c in range(1, L):
            deeper = np.where(active_rel[:, :c], np.arange(c)[None, :], -1).max(axis=1)  # m*, -1: none
            lam[:, c] = np.where(deeper >= 0, irr_cum[np.arange(b), np.maximum(deeper, 0)], 1.0)
            if tt == Tensor.I and self.window_axes:
                lam[:, c] *= spans[:, c, tt][:, self.window_axes].prod(axis=1)
        lam_full = irr_cum.copy()                                              # all assigned irr loops above c
        if tt == Tensor.I and self.window_axes:
            lam_full[:, 1:L] *= spans[:, 1:L, tt][:, :, self.window_axes].prod(axis=2)
        fi = self._free_product(free, ~rel)
        # MAC level: REL * prod_{d irr} D_d / prod_{m>=p} s_{m,d}
        irr_s_below = np.cumprod(np.where(irr_a[None, None], s, 1.0).prod(axis=2)[:, ::-1], axis=1)[:, ::-1]
        irr_dims = float(np.prod(self.dims[irr_a])) if irr_a.any() else 1.0
        mac_words = rel_total * irr_dims / irr_s_below * fi / np.minimum(cap_below, fi)   # [b, L] per parent p
        t_irr = irr_t.prod(axis=1) * fi / np.minimum(cap_below[:, 0], fi)
        xwin = np.ones((b, L + 1, L + 1))                                      # xwin[:, p, c]
        if tt == Tensor.I and self.window_axes:
            xwin = self._window_children(s, free)
            mac_words = self._window_mac_words(s, free, cap_below)
        return {"rel": rel_total, "si": si, "lam": lam, "lam_full": lam_full, "mac_words": mac_words,
                "t_irr": t_irr, "xwin": xwin}

    def _window_mac_words(self, s: np.ndarray, free: np.ndarray, cap_below: np.ndarray) -> np.ndarray:
        """Reads of a windowed input by a parent ``p`` feeding the MACs, ``[b, L]``.

        ``n_p X(p, L) compute``: with ``S_d = prod_{m>=p} s_{m,d}``, ``n_p compute = prod_d D_d / S_d``
        and ``X >= prod_{d in N, C} S_d * prod_{window axes} max(S_1, S_2)``, so the reads are at
        least ``MACs / (S_K prod_axes min(S_1, S_2))``. A free dimension's ``S_d`` is at most
        ``D_d``, and the free ones together at most the fanout left, ``prod_{m>=p} cap_m``; so the
        divisor is at most ``min(ub(S_K) prod_axes min(ub(S_1), ub(S_2)), prod_assigned S * cap)``
        over ``K`` and the window dimensions.
        """
        L = self.levels
        macs = float(np.prod(self.dims))
        below = np.cumprod(s[:, ::-1], axis=1)[:, ::-1]                       # S_d for p = 0..L-1: [b, L, 7]
        ub = np.where(free[None, None, :], self.dims[None, None, :].astype(np.float64), below)
        divisor = ub[:, :, Dim.K].copy()
        dims_used = [int(Dim.K)]
        for a in self.window_axes:
            pair = [int(d) for d in np.flatnonzero(self.proj[Tensor.I, a] != 0)]
            divisor *= ub[:, :, pair].min(axis=2)
            dims_used += pair
        used = np.zeros(len(DIMS), dtype=bool)
        used[dims_used] = True
        assigned_part = np.where((used & ~free)[None, None, :], below, 1.0).prod(axis=2)
        divisor = np.minimum(divisor, assigned_part * cap_below[:, :L])
        return macs / divisor

    def _window_children(self, s: np.ndarray, free: np.ndarray) -> np.ndarray:
        """``[b, p, c]``: a lower bound on the distinct input offsets along the window axes among the
        children of one instance of ``p`` on fanouts ``p..c-1``: per window axis, the largest
        ``prod_{p<=m<c} s_{m,d}`` of one assigned dimension ``d`` moving it (varying one dimension's
        spatial indices, nested across levels, gives that many distinct offsets)."""
        L = self.levels
        b = s.shape[0]
        out = np.ones((b, L + 1, L + 1))
        for p in range(L):
            acc = np.ones((b, len(DIMS)))
            for c in range(p + 1, L + 1):
                acc = acc * s[:, c - 1]
                x = np.ones(b)
                for a in self.window_axes:
                    dims = (self.proj[Tensor.I, a] != 0) & ~free
                    if dims.any():
                        x = x * acc[:, dims].max(axis=1)
                out[:, p, c] = x
        return out

    def _pair_energy(self, tt, p, c, terms):
        """(energy without ``G``, words at the parent) between parent ``p`` and next keeper ``c`` of tensor ``tt``."""
        L = self.levels
        lv_p = self.arch.levels[p]
        rel, si, lam = terms["rel"], terms["si"], terms["lam"]
        fill_e = 0.0
        if c < L:
            lv_c = self.arch.levels[c]
            fill_e = lv_c.fill_energy_pJ / lv_c.block_size
        if tt in (Tensor.W, Tensor.I):
            if c < L:
                reads = rel * si[:, p] * lam[:, c] * terms["xwin"][:, p, c]
                fills = rel * si[:, c] * lam[:, c]
                if tt == Tensor.I and self.input_windowed and self.fan_x[c - 1] * self.fan_y[c - 1] > 1 \
                        and self.arch.levels[c - 1].instances > 1:
                    fills = 0.0  # links may lower the child's fills
            else:
                reads, fills = terms["mac_words"][:, p] * self.mac_fanout_keep, 0.0
            return reads * lv_p.read_energy_pJ / lv_p.block_size + fills * fill_e, reads
        if c < L:
            updates = rel * si[:, p] * lam[:, c]
            reads = rel * si[:, p] * (lam[:, c] - 1)
            fills = rel * si[:, c] * (lam[:, c] - 1)
        else:
            updates = terms["mac_words"][:, p] * self.mac_fanout_keep
            reads = rel * si[:, p] * (terms["t_irr"] - 1) * self.mac_fanout_keep
            fills = 0.0
        e = (updates * lv_p.update_energy_pJ + reads * lv_p.read_energy_pJ) / lv_p.block_size + fills * fill_e
        return e, updates


__all__ = ["BoundModel", "Bounds", "objective_of", "SLACK"]
