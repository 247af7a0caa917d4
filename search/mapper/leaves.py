"""From a complete tiling to the mappings that must be evaluated: orders, spatial orders, keeps.

For one tiling the mapspace holds ``(7!)^L`` temporal permutations, ``prod_l n_x! n_y!`` spatial
orders and every keep combination. :func:`expand_tiling` lists one representative per class of
equal counts (:mod:`search.mapper.orders`), drops keep combinations whose kept tiles overflow a
level (``"capacity"``: illegal) or whose optimistic energy with that keep chain already reaches the
incumbent (``"bound"``, :mod:`search.mapper.bounds`: the chain costs bound every order), and
accounts for every mapping it does not return in ``pruned``. The keep sets' bounds are raised to
their least over every loop order (:mod:`search.mapper.order_energy`: the pair costs depend on one
level's order each, so the least is a sum of per-level least values), and each combination of a
keep set and one order class per level is bounded alike (its energy and the bandwidth cycles
of its throttled levels) and cut (``"bound"``) when it cannot beat the incumbent, before any mapping is scored.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS, projection
from formulation.model.encoding import MappingArrays
from formulation.model.nest import axis_extents, build_nest
import search.mapper.order_energy as order_energy_module
from search.mapper.bounds import BoundModel
from search.mapper.order_energy import OrderEnergy, combination_sum
from search.mapper.orders import level_orders, spatial_orders
from search.mapper.space import Space, windowed_axes

RULE_INACTIVE = "inactive-loops"
RULE_ORDERS = "equivalent-orders"
RULE_SPATIAL = "equivalent-spatial-orders"
RULE_CAPACITY = "capacity"
RULE_BOUND = "bound"
RULE_SYMMETRY = "symmetric-xy"
RULES = (RULE_INACTIVE, RULE_ORDERS, RULE_SPATIAL, RULE_CAPACITY, RULE_BOUND, RULE_SYMMETRY)


@dataclass(frozen=True)
class Rules:
    """Which pruning rules are on (all by default; tests switch them one at a time)."""

    orders: bool = True          # Rule 2 of search.mapper.orders (Rule 1 is always on: it is an identity)
    spatial_orders: bool = True
    bound: bool = True
    symmetry: bool = True


class LeafExpander:
    """Expands complete tilings of one (layer, architecture) into mapping batches."""

    def __init__(self, space: Space, rules: Rules, bm: BoundModel | None = None) -> None:
        self.space = space
        self.rules = rules
        layer = space.layer
        self.windowed = windowed_axes(layer)
        fan_last = space.fan_x[-1] * space.fan_y[-1]
        # links need an input window, or a fanout into the MACs (formulation.model.links)
        self.links_possible = any(self.windowed) or fan_last > 1
        # Rule 3 of search.mapper.orders: no fanout into the MACs, the last level's order is inert
        self.last_order_inert = fan_last == 1
        self.proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
        self.levels = space.levels
        keep_sets = space.keep_options
        combos = list(itertools.product(*keep_sets))
        self.keep_table = np.array([[[t in ks for t in range(N_TENSORS)] for ks in combo] for combo in combos],
                                   dtype=bool)  # [K, L, t]
        self.sizes = np.array([lv.size_words if lv.size_words is not None else np.iinfo(np.int64).max
                               for lv in space.arch.levels], dtype=np.float64)
        self.full_orders = math.factorial(N_DIMS) ** self.levels
        self.chains = chain_matrix(self.keep_table)
        bm = bm if bm is not None else BoundModel(space.layer, space.arch, space)
        self.order_energy = OrderEnergy(bm, self.keep_table)

    def tiles(self, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
        """Tile words ``[b, L, t]`` of complete tilings (the model's own spans)."""
        b = temporal.shape[0]
        arrays = MappingArrays(temporal, sx, sy, np.tile(np.arange(N_DIMS), (b, self.levels, 1)),
                               np.ones((b, self.levels, N_TENSORS), dtype=bool))
        spans = axis_extents(build_nest(arrays), self.proj)
        return spans[:, :self.levels].prod(axis=-1).astype(np.float64)

    def keep_bounds(self, temporal, sx, sy, bounds, rows: np.ndarray | None = None, rule2: bool | None = None,
                    cycles: bool = True, can_beat=None, fits: np.ndarray | None = None):
        """Energy (pJ, with the MACs) and cycles bounds of each keep combination of complete tilings,
        ``[b, K]`` each, and the rows' :class:`search.mapper.order_energy.Parts` over the orders of
        ``rule2`` (``None``: the maximal classes; ``None`` when switched off or without ``rows``):
        energy, the larger of :func:`keep_set_energy` and the least over the loop orders
        (:mod:`search.mapper.order_energy`; only for ``rows``, all by default); cycles, the larger
        of the tiling's and (with ``cycles``) each throttled level's bandwidth at its least words
        over the orders. Each bounds
        every mapping with that tiling and keep set (for EDP so does their product: one mapping's
        energy and cycles are each at least their least).

        With ``can_beat`` ((energy, cycles) bounds ``[r, K]`` -> which may still beat the incumbent)
        only the keep combinations (columns, :attr:`Parts.columns`) that some row may still take
        (that beat with :func:`keep_set_energy` and, with ``fits[r, K]``, fit) get the order bound;
        the others keep :func:`keep_set_energy`, valid and already cut."""
        energy = keep_set_energy(bounds, self.chains)
        base = bounds.cycles
        with_cycles, cycles = cycles, np.repeat(base[:, None], energy.shape[1], axis=1)
        rows = np.arange(len(energy)) if rows is None else rows
        if not (order_energy_module.LEVEL_ORDERS and len(rows)):
            return energy, cycles, None
        columns = None
        if can_beat is not None:
            need = can_beat(energy[rows], cycles[rows])
            columns = np.flatnonzero((need if fits is None else need & fits).any(axis=0))
            if not len(columns):
                return energy, cycles, None
        parts = self.order_energy.parts(temporal[rows], sx[rows], sy[rows], bounds.chain_cost[rows], rule2,
                                        base[rows] if with_cycles else None, columns)
        least, words = parts.least()
        cols = parts.columns
        energy[np.ix_(rows, cols)] = np.maximum(energy[np.ix_(rows, cols)], bounds.mac_energy_pJ + least)
        cycles[np.ix_(rows, cols)] = self.order_energy.cycles(cycles[np.ix_(rows, cols)], words)
        return energy, cycles, parts

    def keep_energy(self, temporal, sx, sy, bounds) -> np.ndarray:
        """The energy bound of :meth:`keep_bounds`, ``[b, K]``."""
        return self.keep_bounds(temporal, sx, sy, bounds)[0]

    def fitting_keep_bounds(self, temporal, sx, sy, bounds, rows: np.ndarray | None = None, cycles: bool = True,
                            can_beat=None):
        """Bounds of complete tilings, ``[3, b]``: the least energy, the least cycles and the least
        product of :meth:`keep_bounds` over the keep combinations whose kept tiles fit every level
        together (``inf`` if none does), for ``rows`` (all by default; 0 elsewhere). Every legal
        mapping of a tiling has one of them, and its energy, cycles and their product are at least
        that combination's bounds. ``can_beat``: as in :meth:`keep_bounds`."""
        b = temporal.shape[0]
        out = np.zeros((3, b))
        rows = np.arange(b) if rows is None else rows
        if not len(rows):
            return out
        t, x, y = temporal[rows], sx[rows], sy[rows]
        tiles = self.tiles(t, x, y)
        fits = keeps_fit(self.keep_table, tiles, self.sizes)
        energy, cycles, _ = self.keep_bounds(t, x, y, take_bounds(bounds, rows), cycles=cycles, can_beat=can_beat,
                                             fits=fits)
        energy, cycles = np.where(fits, energy, np.inf), np.where(fits, cycles, np.inf)
        out[:, rows] = energy.min(axis=1), cycles.min(axis=1), (energy * cycles).min(axis=1)
        return out

    def fitting_keep_energy(self, temporal, sx, sy, bounds) -> np.ndarray:
        """The energy bound of :meth:`fitting_keep_bounds`, ``[b]``."""
        return self.fitting_keep_bounds(temporal, sx, sy, bounds)[0]

    def expand_tiling(self, temporal, sx, sy, tiles, keep_ok, pruned: dict, energy_ok=None,
                      parts=None, base_cycles: float = 0.0) -> tuple[MappingArrays | None, int]:
        """The mappings to evaluate for one tiling (``[L, 7]`` arrays) and their number.

        ``keep_ok[K]`` marks the keep combinations the caller's bound keeps; ``pruned`` is updated
        with every mapping of the tiling that is not returned. With ``energy_ok`` ((energy bounds
        in pJ without the MACs, cycles bounds) -> which to keep) and the tiling's ``parts``
        (:class:`search.mapper.order_energy.Parts` of :meth:`keep_bounds` over the orders listed
        here), each combination of a keep set and one order per level ``< L - 1`` is bounded by
        :func:`search.mapper.order_energy.combination_sum` (energy; the words of the throttled
        levels for the cycles, at least ``base_cycles``) and dropped (``"bound"``) unless kept: they bound every
        mapping with that keep set and those orders, whatever the last level's order and the
        spatial orders.
        """
        L = self.levels
        fits = keeps_fit(self.keep_table, tiles, self.sizes)
        x_dims = [tuple(int(d) for d in np.flatnonzero(sx[l] > 1)) for l in range(L)]
        y_dims = [tuple(int(d) for d in np.flatnonzero(sy[l] > 1)) for l in range(L)]
        sp_full = math.prod(math.factorial(len(x)) * math.factorial(len(y)) for x, y in zip(x_dims, y_dims))
        per_keep = self.full_orders * sp_full
        n_overflow = int((~fits).sum())
        use = fits & keep_ok
        n_bound = int((fits & ~keep_ok).sum())
        pruned[RULE_CAPACITY] += n_overflow * per_keep
        pruned[RULE_BOUND] += n_bound * per_keep
        n_keep = int(use.sum())
        if n_keep == 0:
            return None, 0
        active = [tuple(int(d) for d in np.flatnonzero(temporal[l] > 1)) for l in range(L)]
        orders = [level_orders(a, self.windowed, self.rules.orders) for a in active]
        if self.rules.orders and self.last_order_inert:
            orders[L - 1] = orders[L - 1][:1]
        after_rule1 = math.prod(math.factorial(len(a)) for a in active)
        n_orders = math.prod(len(o) for o in orders)
        all_sp = self.links_possible or not self.rules.spatial_orders
        sps = [spatial_orders(x, y, all_sp) for x, y in zip(x_dims, y_dims)]
        n_sp = math.prod(len(s) for s in sps)
        pruned[RULE_INACTIVE] += (self.full_orders - after_rule1) * sp_full * n_keep
        pruned[RULE_ORDERS] += (after_rule1 - n_orders) * sp_full * n_keep
        pruned[RULE_SPATIAL] += n_orders * (sp_full - n_sp) * n_keep
        keeps = self.keep_table[use]
        idx = list(np.indices([len(o) for o in orders] + [len(s) for s in sps] + [n_keep]).reshape(2 * L + 1, -1))
        n = idx[0].size
        ks = np.flatnonzero(use)
        if parts is not None and not set(ks.tolist()) <= set(parts.columns.tolist()):
            parts = None  # a keep combination without its order parts: no combination cut
        if energy_ok is not None and parts is not None and L > 1:
            cs, counts = np.searchsorted(parts.columns, ks), [len(o) for o in orders[:L - 1]]
            energy = combination_sum(parts.energy, parts.energy_levels, cs, counts)
            cycles = self.order_energy.cycles(base_cycles, [combination_sum(f, lv, cs, counts)
                                                            for f, lv in parts.channels])
            sel = np.asarray(energy_ok(energy, cycles))[(idx[2 * L],) + tuple(idx[:L - 1])]
            pruned[RULE_BOUND] += int(n - sel.sum())
            idx = [i[sel] for i in idx]
            n = idx[0].size
            if n == 0:
                return None, 0
        order = np.stack([orders[l][idx[l]] for l in range(L)], axis=1)
        sp_arr = [np.array(s, dtype=np.int64) for s in sps]
        sorder = np.stack([sp_arr[l][idx[L + l]] for l in range(L)], axis=1)
        keep = keeps[idx[2 * L]]
        rep = lambda a: np.broadcast_to(a[None], (n,) + a.shape).copy()  # noqa: E731
        return MappingArrays(rep(temporal), rep(sx), rep(sy), order, keep, sorder), n


def take_bounds(bounds, rows: np.ndarray):
    """The :class:`search.mapper.bounds.Bounds` of some rows."""
    arrays = {f.name: getattr(bounds, f.name)[rows] for f in dataclasses.fields(bounds)
              if isinstance(getattr(bounds, f.name), np.ndarray)}
    return dataclasses.replace(bounds, **arrays)


def keeps_fit(keep_table: np.ndarray, tiles: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Whether the tiles each keep combination ``keep_table[K, L, t]`` keeps fit every level together
    (Timeloop's capacity check: a level's kept tiles ``tiles[..., L, t]`` (words) sum to at most its
    size ``sizes[L]``), ``[..., K]``."""
    used = np.einsum("klt,...lt->...kl", keep_table.astype(np.float64), tiles)
    return (used <= sizes).all(axis=-1)


def chain_matrix(keep_table: np.ndarray) -> np.ndarray:
    """``M[k, t, p, c] = 1`` when, in keep combination ``k``, ``c`` is the next level below ``p`` keeping
    ``t`` (``c = L``: the MACs), so that a combination's bound energy is ``sum M * chain_cost``."""
    K, L, T = keep_table.shape
    out = np.zeros((K, T, L + 1, L + 1))
    for k in range(K):
        for t in range(T):
            keepers = [l for l in range(L) if keep_table[k, l, t]] + [L]
            for p, c in zip(keepers, keepers[1:]):
                out[k, t, p, c] = 1.0
    return out


def chain_energy(chain_cost: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bound energy (pJ, without MACs) of each keep combination, ``[b, K]`` for ``chain_cost[b, t, p, c]``
    of :class:`search.mapper.bounds.Bounds` (a level that may not keep ``t`` costs ``inf``)."""
    finite = np.where(np.isfinite(chain_cost), chain_cost, 1e300)
    energy = np.einsum("ktpc,btpc->bk", matrix, finite)
    return np.where(energy >= 1e299, np.inf, energy)


def keep_set_energy(bounds, matrix: np.ndarray) -> np.ndarray:
    """Bound energy (pJ, with the MACs) of each keep combination, ``[b, K]``: the per-chain bound, raised
    to the least over the innermost loop's forced sets (:meth:`search.mapper.bounds.Bounds.forced_chain_costs`)."""
    energy = chain_energy(bounds.chain_cost, matrix)
    joint = None
    for cost, rows in bounds.forced_chain_costs():
        e = np.where(rows[:, None], chain_energy(cost, matrix), np.inf)
        joint = e if joint is None else np.minimum(joint, e)
    if joint is not None:
        energy = np.maximum(energy, joint)
    return bounds.mac_energy_pJ + energy


__all__ = ["LeafExpander", "Rules", "RULES", "chain_energy", "chain_matrix", "keep_set_energy", "keeps_fit"]
