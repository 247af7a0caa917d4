"""The least energy over every loop order of a complete tiling, per keep set: the level-order bound.

The chain costs of :mod:`search.mapper.bounds` credit every tensor with its own best loop order
(``Lambda_c``: only the loops of the levels above ``m*`` refetch), although the tensors share one
permutation per level. :meth:`OrderEnergy.parts` takes the least over the orders jointly, per
complete tiling and keep set, exactly for the Weights and Outputs and the inputs without a window,
and per keep set and order combination (:func:`combination_sum`, which
:meth:`search.mapper.leaves.LeafExpander.expand_tiling` cuts with).

**Claim.** Fix a complete tiling and a keep set, and let tensor ``t``'s keepers be
``0 = k_0 < k_1 < ... < L`` (``L`` the MACs). For a pair ``(p, c)`` of consecutive keepers with
``c < L`` let ``m*_t(c)`` be the deepest level above ``c`` (``< c``) with an active loop over
``Rel_t`` (:mod:`search.mapper.bounds`, "Arrivals"; it depends on the tiling only) and ``j*`` the
innermost such loop in the flattened nest. Every loop at or outside ``j*`` counts in the
arrivals (``a_c >= tile * prod_{j <= j*} f_j``, equality for a tensor with no window); those are
every loop of the levels ``< m*``, the ``Rel_t`` loops, and the loops of level ``m*`` that are
not in ``t``'s *prefix* there: the active loops of level ``m*`` inside its first active
``Rel_t`` loop (the sets of :func:`search.mapper.orders.order_key`). The levels ``m* + 1 .. c - 1``
hold no active ``Rel_t`` loop, so all their loops are inside ``j*``. Hence, for the order ``o``
of level ``m*``,

    Lambda_c(o) = Lambda_c * prod_{d not in Rel_t} t_{m*,d} / prod_{d in prefix_t(o)} t_{m*,d},

``Lambda_c`` the bound's (levels above ``m*``, times ``W_c`` for a windowed input). Every term of
the pair's cost (:func:`search.mapper.pair_terms.pair_energy`: reads, fills, updates,
the Outputs' read-modify-write ``Lambda - 1``, the multicast and window factors, the links'
floor) holds with ``Lambda_c(o)`` in place of ``Lambda_c`` for a mapping whose level ``m*``
order is ``o``, by the same argument with that mapping's own ``j*``; the compulsory and sweep
floors (:mod:`search.mapper.sweep`) hold for every order, so their ``max`` holds per order. The
pairs with no active ``Rel_t`` loop above ``c`` and those into the MACs (``c = L``: the arrivals
are the compute, every loop counts) do not depend on any order. So the energy of a keep set
is ``sum_fixed + sum_m E_m(o_m)``, ``E_m(o)`` the summed costs of the pairs ``(t, p, c)`` of the
keep set's chains with ``m*_t(c) = m``, each depending on level ``m``'s order only: the orders
of different levels are chosen independently, so the least over all orders is
``sum_fixed + sum_m min_o E_m(o)``. It suffices to try one permutation per class of
:func:`search.mapper.orders.level_orders` (the costs read the order through the prefix sets
only), and of those the *maximal* ones: every cost grows with ``Lambda``, which shrinks as a
prefix set grows, so a class whose prefix sets are each contained in another class's is never
cheaper. For the Weights, the Outputs and inputs without a window every count is exact, and the
bound is the least energy over the orders up to the rounding of ``n ceil(x / (n B)) >= x / B``
(it equals it with blocks of one word); for a windowed input it is a lower bound.

**Windowed inputs** (stride change). In :func:`formulation.model.nest.arrivals` a loop ``j``
above ``c`` whose move ``T_j = sh_j - sum_{i > j active} sh_i`` differs from the innermost
loop's ``T_z`` brings the whole tile (reset on stride change). Let ``j`` be a loop over a
dimension outside ``Rel_I`` with an active loop inside it (above ``c``) moving an input axis
that ``d_j`` does not move: on that axis ``T_j < 0 <= T_z`` (shifts are non-negative), so
``delta_j = tile``. With ``F`` those loops and the ``Rel_I`` loops (whole tiles too: they move a
single-dimension axis by at least its span), ``sum_{j in F} (f_j - 1) prod_{i < j} f_i >=
prod_F f - 1`` (telescoping over ``F`` alone), so ``a_c >= tile * prod_F f``: ``Lambda_c`` may
count every loop of ``F`` outside ``Rel_I``, which contains every loop outside ``j*``. Walk the
loops from ``c`` outwards: up to ``m1``, the deepest level with an active loop moving the input,
only K loops are active (none moves anything: not in ``F``); at ``m1`` membership depends on its
order only (the class's saved set, row ``STRIDE_ROW`` of :func:`search.mapper.order_classes.prefix_masks`; the input's
``order_key`` sequence fixes it); above ``m1`` every loop is in ``F`` once ``m1``'s loops move
two axes; if they move one axis ``a``, a loop above is in ``F`` if it does not move ``a``, and
every loop is at the levels above ``m2``, the deepest level above ``m1`` moving another axis;
a loop along ``a`` at the levels ``m2 .. m1 - 1`` has only loops along ``a`` inside (at ``m2``
perhaps others too, making it a whole tile anyway), so ``T_j = sh_j - (their shifts)`` on ``a``,
while ``T_z`` is 0 or one shift along ``a`` at ``m1``: it counts when ``sh_j`` differs from every
sum of the shifts inside it whatever the orders plus one of those ``T_z`` (else it is left out, a
lower bound). At ``m1`` itself, when the innermost loop moves nothing (``T_z = 0``, below
``m1`` or first in its order) the first loop moving the input brings a whole tile too (its
``T`` is its own shift). So ``Lambda_c(o) = W_c * base * prod_{d not in Rel_I} t_{m1,d} / saved(o)``,
attached to ``m1``. Links (a fanout at ``c - 1``) may lower the parent's reads only for steps
whose delta has the same shape as the innermost loop's (:mod:`formulation.model.links`, "The
delta sequence": every linking pair involves ``z``'s delta): when ``z``'s delta is empty (``z``
moves no input axis) or a slab (``z`` moves a window axis by less than the tile's span), no
whole-tile delta links and the count stands; when ``z`` is a window loop whose step reaches the
span, the old ``Lambda_c`` (``j*``) is used for that class (its argument covers links). The
largest of the two counts, where both hold, is used.

**Cycles.** A pair's words (reads and updates of its parent, fills of its child) depend on the
orders in the same way, so for a keep set and one order per level their sums per level, and over
the orders the sum of each level's least, bound the words of every such mapping. A level with one
instance and a bandwidth takes at least ``reads / read_bw`` and ``(fills + updates) / write_bw``
cycles (:mod:`formulation.model.kernel`: the throttle ``min(bw / rate)`` stretches the compute
cycles), the compulsory floors holding per order as above. For EDP a keep set's bound is its
least energy times its largest such cycles at their least words (one mapping's energy and cycles
are each at least their least), and a combination's its own energy times its own cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulation.axes import N_AXES, N_DIMS, N_TENSORS, Tensor
from search.mapper.bounds import SLACK, RelaxedTerms
from search.mapper.order_classes import (STRIDE_BELOW_ROW, STRIDE_ROW, deepest_relevant, input_axis,
                                         level_savings, prefix_classes, relevant_sets)
from search.mapper.pair_terms import pair_energy
import search.mapper.window_refetch as window_refetch

#: Whether complete tilings' per-keep-set energy is raised to the least over the loop orders
#: (module docstring); off is weaker, still valid.
LEVEL_ORDERS = True


class OrderEnergy:
    """The level-order bound of one (layer, architecture) for the keep combinations ``keep_table``
    (``[K, L, t]``, :class:`search.mapper.leaves.LeafExpander`)."""

    def __init__(self, bm, keep_table: np.ndarray) -> None:
        self.bm = bm
        self.levels = bm.levels
        self.rel = relevant_sets(bm.windowed)
        self.keep_table = keep_table
        # per tensor: its distinct chains of keepers and, per keep combination, which one it is
        self.chain_pairs, self.chain_index = [], np.zeros((len(keep_table), N_TENSORS), dtype=np.int64)
        for tt in range(N_TENSORS):
            rows, idx = np.unique(keep_table[:, :, tt], axis=0, return_inverse=True)
            self.chain_index[:, tt] = idx.ravel()
            pairs = []
            for row in rows:
                keepers = [l for l in range(self.levels) if row[l]] + [self.levels]
                pairs.append(list(zip(keepers, keepers[1:])))
            self.chain_pairs.append(pairs)
        n = (self.levels + 1) ** 2                                                    # flat (p, c); n: 0 slot
        self.pair_index = [np.array([[p * (self.levels + 1) + c for p, c in pairs] + [n] * (self.levels - len(pairs))
                                     for pairs in chains]) for chains in self.chain_pairs]

    def pair_costs(self, temporal, sx, sy, chain_cost, levels: list[tuple[np.ndarray, np.ndarray]],
                   free: np.ndarray | None = None, with_words: bool = True, shared: RelaxedTerms | None = None):
        """Per pair, the order-free part ``fixed[b, t, p, c]`` (pJ, with ``G``; ``inf`` where ``p`` may
        not keep ``t``) and per level ``m < L - 1`` the part depending on level ``m``'s order,
        ``per_level[m][b, t, p, c, o]`` (0 for the pairs attached to another level), for the orders
        whose savings and innermost loops are ``levels[m] = (saved[b, o, 5], inner[b, o])``
        (:func:`search.mapper.order_classes.savings`). A pair is attached to ``m*_t(c)``, a windowed input's to ``m1(c)``. Also
        the pairs' words (reads and updates of ``p``, fills of ``c``), ``words[3, b, t, p, c]`` and
        ``words_level[m][3, b, t, p, c, o]``, split alike. With ``free`` (partial tilings, free
        dimensions at 1; :mod:`search.mapper.partial_orders`) the terms relax the free dimensions and a
        windowed input's pairs go to ``m*`` too (no stride change); without ``with_words`` no words.
        ``shared`` (the same rows and ``free``) gives the batch and the pair terms already computed."""
        bm, L = self.bm, self.levels
        partial = free is not None and bool(np.any(free))
        free = np.zeros(N_DIMS, dtype=bool) if free is None else np.asarray(free, dtype=bool)
        if shared is None:
            shared = RelaxedTerms(bm, bm.batch(temporal, sx, sy), free)
        batch = shared.batch
        mstar = deepest_relevant(temporal, self.rel)                          # [b, t, L+1]
        attach = mstar.copy()
        if bm.input_windowed and not partial:
            stride = self._stride_terms(temporal, batch)
            attach[:, Tensor.I] = stride["m1"]
        finite = np.isfinite(chain_cost)
        varies = (attach >= 0)[:, :, None, :] & (np.arange(L + 1) < L)[None, None, None, :]
        fixed = np.where(varies, np.where(finite, 0.0, np.inf), chain_cost)
        b = temporal.shape[0]
        t = temporal.astype(np.float64)
        g = bm.layer.G
        per_level = [np.zeros((b, N_TENSORS, L + 1, L + 1, sv.shape[1])) for sv, _ in levels]
        words = np.zeros((3, b, N_TENSORS, L + 1, L + 1))                    # reads, updates of p, fills of c
        words_level = [np.zeros((3, b, N_TENSORS, L + 1, L + 1, sv.shape[1])) for sv, _ in levels] \
            if with_words else []
        for tt in range(N_TENSORS):
            terms = shared.terms[tt]
            for c in range(1, L + 1) if with_words else ():
                for p in range(c):
                    counts = pair_energy(bm, tt, p, c, terms, counts=True)[1:]
                    for k, w in enumerate(counts):
                        w = np.broadcast_to(w, (b, 1))[:, 0] * g
                        words[k, :, tt, p, c] = np.where(varies[:, tt, 0, c] | ~finite[:, tt, p, c], 0.0, w)
            for m in range(L - 1):
                if not (attach[:, tt, :L] == m).any():
                    continue
                saved, inner = levels[m]
                kf = window_refetch.k_outside(temporal, lambda a: prefix_classes(a, bm.windowed), m) \
                    if tt == Tensor.I and bm.input_windowed and partial and window_refetch.WINDOW_REFETCH else None
                irr = np.where(self.rel[tt][None], 1.0, t[:, m]).prod(axis=1)   # [b]
                for c in range(m + 1, L):
                    on = (attach[:, tt, c] == m)[:, None] & finite[:, tt, :c, c]   # [b, p]
                    if not on.any():
                        continue
                    base = terms["lam"][:, :, c]                                 # [b, 1]
                    lam_c = np.where((mstar[:, tt, c] == m)[:, None], base * irr[:, None] / saved[:, :, tt], base)
                    if tt == Tensor.I and bm.input_windowed and not partial:
                        lam_c = self._stride_lambda(lam_c, stride, saved, inner, t, m, c)
                    lam = np.ones((b, lam_c.shape[1], L + 1))
                    lam[:, :, c] = lam_c
                    priced = dict(terms, lam=lam)
                    if kf is not None:                                           # the same at every c
                        priced = window_refetch.scaled_compulsory(priced, kf[:, :lam_c.shape[1]], c)
                    for p in range(c):
                        if on[:, p].any():
                            e, *counts = pair_energy(bm, tt, p, c, priced, counts=True)
                            per_level[m][:, tt, p, c] = np.where(on[:, p, None], e * g, 0.0)
                            for k, w in enumerate(counts if with_words else ()):
                                w = np.broadcast_to(w, e.shape)
                                words_level[m][k, :, tt, p, c] = np.where(on[:, p, None], w * g, 0.0)
        return fixed, per_level, words, words_level

    def _stride_terms(self, temporal, batch) -> dict:
        """A windowed input's order-free terms (module docstring, "Windowed inputs"), per keeper ``c``
        (``[b, L+1]``): ``m1``, the deepest level above ``c`` with an active loop moving the input
        (``-1``: none); ``base``, the product of the loops above ``m1`` that a loop inside them
        moves along another axis (at the levels ``m2 .. m1 - 1``, ``m2`` the deepest moving another
        axis than ``m1``'s only one ``a``, the loops along ``a`` count only as :meth:`_sure_along`
        finds them); ``below``, whether a
        loop is active between ``m1`` and ``c``; ``wc``, the window spans ``W_c``; and per
        dimension whether its step at ``m1`` reaches the tile's span, ``full[b, L+1, 7]``."""
        bm, L = self.bm, self.levels
        b = temporal.shape[0]
        t = temporal.astype(np.float64)
        active = temporal > 1
        axis = input_axis()
        nonrel = ~self.rel[Tensor.I]
        axes_at = np.zeros((b, L), dtype=np.int64)                             # bitmask of moved axes
        for d in range(N_DIMS):
            if axis[d] >= 0:
                axes_at |= np.where(active[:, :, d], 1 << int(axis[d]), 0)
        all_irr = np.where(nonrel[None, None], t, 1.0).prod(axis=2)           # [b, L]
        not_a = np.stack([np.where((nonrel & (axis != a))[None, None], t, 1.0).prod(axis=2)
                          for a in range(N_AXES)], axis=2)                     # [b, L, a]
        rows = np.arange(b)
        out = {k: np.zeros((b, L + 1)) for k in ("base", "wc")}
        out["m1"] = np.full((b, L + 1), -1, dtype=np.int64)
        out["below"] = np.zeros((b, L + 1), dtype=bool)
        out["full"] = np.zeros((b, L + 1, N_DIMS), dtype=bool)
        shift = np.einsum("ad,bld->bld", bm.proj[Tensor.I], batch.ext[:, 1:] * batch.s)     # [b, L, 7]
        for c in range(1, L + 1):
            m1 = np.where(axes_at[:, :c] > 0, np.arange(c)[None], -1).max(axis=1)
            s1 = axes_at[rows, np.maximum(m1, 0)]
            single = (s1 & (s1 - 1)) == 0
            a = np.log2(np.maximum(s1, 1)).astype(np.int64)
            other = (axes_at[:, :c] & ~s1[:, None]) > 0
            m2 = np.where(other & (np.arange(c)[None] < m1[:, None]), np.arange(c)[None], -1).max(axis=1)
            lv = np.arange(c)[None]
            loose = single[:, None] & (lv >= m2[:, None])                       # a-loops left out there
            sure = self._sure_along(t, active, shift, axis, nonrel, m1, a, c)
            per = np.where(loose, not_a[:, :c][rows[:, None], lv, a[:, None]] * sure, all_irr[:, :c])
            out["base"][:, c] = np.where(lv < m1[:, None], per, 1.0).prod(axis=1)
            out["m1"][:, c] = m1
            out["below"][:, c] = (active[:, :c].any(axis=2) & (lv > m1[:, None])).any(axis=1)
            out["wc"][:, c] = batch.spans[:, c, Tensor.I][:, bm.window_axes].prod(axis=1)
            span = batch.spans[:, c, Tensor.I][:, np.maximum(axis, 0)]         # [b, 7]
            out["full"][:, c] = nonrel[None] & (axis >= 0)[None] & (shift[rows, np.maximum(m1, 0)] >= span)
        return out

    @staticmethod
    def _sure_along(t, active, shift, axis, nonrel, m1, a, c) -> np.ndarray:
        """Per level ``m < c``, ``[b, c]``: the product of the loops outside ``Rel_I`` along axis
        ``a`` that bring whole tiles whatever the orders: with only loops along ``a`` inside
        (the levels ``m + 1 .. m1`` all of theirs, level ``m`` perhaps its other one), ``T_j`` on
        ``a`` is ``sh_j`` less their shifts, and ``T_z`` is 0 or the shift of a loop along ``a``
        at ``m1``; a loop whose shift differs from every such sum has ``T_j != T_z``."""
        b = active.shape[0]
        rows = np.arange(b)
        on_a = active & (axis[None, None] == a[:, None, None])                   # [b, L, 7]
        sh_a = np.where(on_a, shift, 0.0)
        level_sum = sh_a.sum(axis=2)                                             # [b, L]
        lv = np.arange(active.shape[1])[None]
        top = np.maximum(m1, 0)
        z_opts = [np.zeros(b)] + [sh_a[rows, top, d] for d in range(N_DIMS)]
        out = np.ones((b, c))
        for m in range(c):
            inner = np.where((lv > m) & (lv <= m1[:, None]), level_sum, 0.0).sum(axis=1)
            for d in range(N_DIMS):
                if not nonrel[d] or axis[d] < 0:
                    continue
                cand = on_a[:, m, d] & (m < m1)
                if not cand.any():
                    continue
                xs = [np.zeros(b)] + [sh_a[:, m, e] for e in range(N_DIMS) if e != d]
                hit = np.zeros(b, dtype=bool)
                for x in xs:
                    for y in z_opts:
                        hit |= shift[:, m, d] == inner + x + y
                out[:, m] *= np.where(cand & ~hit, t[:, m, d], 1.0)
        return out

    def _stride_lambda(self, lam_old, stride, saved, inner, t, m, c):
        """A windowed input's ``Lambda_c(o)`` for the pairs attached to level ``m = m1(c)``, ``[b, o]``:
        the stride-change count where no link can lower it, else ``lam_old`` (module docstring)."""
        bm = self.bm
        nonrel = np.where(self.rel[Tensor.I][None], 1.0, t[:, m]).prod(axis=1)   # [b]
        kept = np.where(stride["below"][:, c][:, None], saved[:, :, STRIDE_BELOW_ROW], saved[:, :, STRIDE_ROW])
        new = (stride["wc"][:, c] * stride["base"][:, c] * nonrel)[:, None] / kept
        links = bm.fan_x[c - 1] * bm.fan_y[c - 1] > 1
        if not links:
            return np.maximum(new, lam_old)
        full = np.take_along_axis(stride["full"][:, c], np.maximum(inner, 0), axis=1) & (inner >= 0)
        unsafe = full & ~stride["below"][:, c][:, None]
        return np.where(unsafe, lam_old, np.maximum(new, lam_old))

    def _per_keep(self, cost: np.ndarray, keeps: np.ndarray) -> np.ndarray:
        """Summed over the tensors and the pairs of their chains, the cost of keep combinations
        ``keeps``: ``[b, k, ...]`` for ``cost[b, t, p, c, ...]``."""
        b, extra = cost.shape[0], cost.shape[4:]
        flat = cost.reshape((b, N_TENSORS, -1) + extra)
        flat = np.concatenate([flat, np.zeros((b, N_TENSORS, 1) + extra)], axis=2)   # a 0 slot pads chains
        idx = self.chain_index[keeps]
        return sum(flat[:, tt][:, self.pair_index[tt]].sum(axis=2)[:, idx[:, tt]] for tt in range(N_TENSORS))

    def channels(self) -> list[tuple[int, int, float]]:
        """The throttled levels with one instance, as ``(level, kind, words per cycle)``: kind 0 its
        reads, kind 1 its writes (fills and updates; :mod:`formulation.model.kernel`)."""
        out = []
        for l, lv in enumerate(self.bm.arch.levels):
            if lv.instances == 1:
                out += [(l, k, bw) for k, bw in ((0, lv.read_bw_words), (1, lv.write_bw_words)) if bw is not None]
        return out

    def _channel(self, words: np.ndarray, level: int, kind: int) -> np.ndarray:
        """A level's reads (``kind`` 0) or writes per pair, ``[b, t, p, c, ...]``, from ``words[3, ...]``."""
        L = self.levels
        at_p = np.broadcast_to((np.arange(L + 1) == level)[:, None], (L + 1, L + 1))
        at_c = at_p.T
        shape = (1, 1, L + 1, L + 1) + (1,) * (words.ndim - 5)
        if kind == 0:
            return words[0] * at_p.reshape(shape)
        return words[1] * at_p.reshape(shape) + words[2] * at_c.reshape(shape)

    def cycles(self, base: np.ndarray, words: list) -> np.ndarray:
        """Cycles bound from ``base`` (:attr:`search.mapper.bounds.Bounds.cycles`) and the words of
        each of :meth:`channels` (same shapes): a level with one instance takes at least its reads
        over its read bandwidth and its writes over its write bandwidth (the kernel's throttle)."""
        out = base
        for (_, _, bw), w in zip(self.channels(), words):
            out = np.maximum(out, w / bw * SLACK)
        return out

    def parts(self, temporal, sx, sy, chain_cost: np.ndarray, rule2: bool | None = None,
              base_cycles: np.ndarray | None = None, columns: np.ndarray | None = None) -> Parts:
        """The module docstring's sums per keep combination of complete tilings (:class:`Parts`), over
        the orders of :func:`search.mapper.order_classes.level_savings` with ``rule2``; the words of the throttled levels only
        with ``base_cycles`` (``[b]``), and of a channel only if some row's words over all pairs
        and the most of each level's orders could exceed them (the others add nothing: 0 words); for
        the keep combinations ``columns`` (ascending; all by default)."""
        levels = [level_savings(temporal, self.bm.windowed, m, rule2) for m in range(self.levels - 1)]
        fixed, per_level, words, words_level = self.pair_costs(temporal, sx, sy, chain_cost,
                                                               [(sv, inn) for sv, inn, _ in levels],
                                                               with_words=base_cycles is not None)
        keeps = np.arange(len(self.chain_index)) if columns is None else np.asarray(columns)
        chans = []
        for l, k, bw in self.channels() if base_cycles is not None else ():
            ch, ch_levels = self._channel(words, l, k), [self._channel(w, l, k) for w in words_level]
            most = ch.sum(axis=(1, 2, 3)) + sum(w.max(axis=4).sum(axis=(1, 2, 3)) for w in ch_levels)
            if (most / bw > base_cycles).any():
                chans.append((self._per_keep(ch, keeps), [self._per_keep(w, keeps) for w in ch_levels]))
            else:
                chans.append((np.zeros((len(temporal), len(keeps))), []))
        return Parts(self._per_keep(fixed, keeps), [self._per_keep(c, keeps) for c in per_level], chans,
                     [n for _, _, n in levels], keeps)

    def keep_energy(self, temporal, sx, sy, chain_cost: np.ndarray) -> np.ndarray:
        """The least energy (pJ, without the MACs) over every loop order of each complete tiling and
        keep combination, ``[b, K]``: exact for tensors with no window (module docstring)."""
        return self.parts(temporal, sx, sy, chain_cost).least()[0]


@dataclass(frozen=True)
class Parts:
    """Per complete tiling and keep combination, the order-free part and, per level ``m < L - 1``, the
    part of each of its orders (``[b, K]``, ``[b, K, o]``) of the energy bound (pJ, without the MACs)
    and, per channel of :meth:`OrderEnergy.channels`, of its words (``channels[i] = (fixed,
    levels)``); ``counts[m][b]`` the orders of each row (later ones repeat its first); ``columns`` the
    keep combinations the ``K`` axis holds (ascending indices into the keep table)."""

    energy: np.ndarray
    energy_levels: list
    channels: list
    counts: list
    columns: np.ndarray

    def least(self) -> tuple[np.ndarray, list]:
        """The energy's and each channel's least over the orders (each level's own), ``[b, K]``."""
        least = lambda fixed, levels: fixed + sum(part.min(axis=2) for part in levels)  # noqa: E731
        return least(self.energy, self.energy_levels), [least(f, lv) for f, lv in self.channels]

    def row(self, i: int) -> Parts:
        return Parts(self.energy[i], [p[i] for p in self.energy_levels],
                     [(f[i], [p[i] for p in lv]) for f, lv in self.channels], [n[i] for n in self.counts],
                     self.columns)


def combination_sum(fixed: np.ndarray, per_level: list[np.ndarray], keeps: np.ndarray,
                    counts: list[int]) -> np.ndarray:
    """For one complete tiling, a sum of :class:`Parts` (``fixed[K]``, ``per_level[m][K, o]``) for each
    keep combination in ``keeps`` with one order per level ``m < L - 1`` (the first ``counts[m]``),
    ``[k, n_0, ..., n_{L-2}]`` (no ``per_level``: the fixed part, broadcast)."""
    out = fixed[keeps].reshape((len(keeps),) + (1,) * len(counts))
    for m, part in enumerate(per_level):
        shape = [len(keeps)] + [1] * len(counts)
        shape[1 + m] = counts[m]
        out = out + part[keeps, :counts[m]].reshape(shape)
    return out


__all__ = ["OrderEnergy", "Parts", "combination_sum", "LEVEL_ORDERS"]
