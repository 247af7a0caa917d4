"""The least energy over every loop order of a complete tiling, per keep set: the level-order bound.

The chain costs of :mod:`search.mapper.bounds` credit every tensor with its own best loop order
(``Lambda_c``: only the loops of the levels above ``m*`` refetch), although the tensors share one
permutation per level. :func:`order_keep_energy` takes the least over the orders jointly, per
complete tiling and keep set, exactly for the Weights and Outputs and the inputs without a window.

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
the pair's cost (:meth:`search.mapper.bounds.BoundModel._pair_energy`: reads, fills, updates,
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
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from formulation.axes import DIMS, N_DIMS, N_TENSORS, RELEVANCE, Tensor
from search.mapper.orders import level_orders, non_window_dims_of_inputs
from search.mapper.splits import relaxed_keys

#: Whether complete tilings' per-keep-set energy is raised to the least over the loop orders
#: (module docstring); off is weaker, still valid.
LEVEL_ORDERS = True


def _relevant(windowed: tuple[bool, bool]) -> np.ndarray:
    """``Rel_t`` per tensor, ``[t, 7]``: the dimensions whose loops stop a tensor's prefix."""
    rel = RELEVANCE.copy()
    if any(windowed):
        nw = non_window_dims_of_inputs(windowed)
        rel[Tensor.I] = [int(d) in nw for d in DIMS]
    return rel


def prefix_masks(perms: np.ndarray, active: tuple[int, ...], windowed: tuple[bool, bool]) -> np.ndarray:
    """Each tensor's prefix set under each permutation (innermost first) of a level whose active
    loops are ``active``: the active loops inside its first active ``Rel_t`` loop, ``[n, t, 7]``."""
    rel = _relevant(windowed)
    act = set(active)
    out = np.zeros((len(perms), N_TENSORS, N_DIMS), dtype=bool)
    for i, perm in enumerate(perms):
        seq = [int(x) for x in perm if int(x) in act]
        for t in range(N_TENSORS):
            for d in seq:
                if rel[t, d]:
                    break
                out[i, t, d] = True
    return out


@lru_cache(maxsize=4096)
def prefix_classes(active: tuple[int, ...], windowed: tuple[bool, bool]) -> np.ndarray:
    """The maximal prefix sets of a level whose active loops are ``active``, ``[n, t, 7]``: of the
    classes of :func:`search.mapper.orders.level_orders`, those whose sets no other class's contain
    on every tensor (module docstring), one per distinct triple of sets."""
    out = np.unique(prefix_masks(level_orders(active, windowed, True), active, windowed), axis=0)
    within = (out[:, None] <= out[None, :]).all(axis=(2, 3))          # [i, j]: i's sets inside j's
    return out[~(within & ~np.eye(len(out), dtype=bool)).any(axis=1)]


def savings(temporal_level: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``prod_{d in prefix_t(o)} t_d``, ``[r, o, t]``, for one level's factors ``[r, 7]`` and prefix sets ``[o, t, 7]``."""
    t = temporal_level.astype(np.float64)
    return np.where(masks[None], t[:, None, None, :], 1.0).prod(axis=3)


def deepest_relevant(temporal: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """``m*[b, t, c]``: the deepest level ``< c`` with an active loop over ``Rel_t`` (``-1``: none),
    for ``c = 0 .. L`` (``m*`` at ``c = 0`` is always ``-1``)."""
    b, L, _ = temporal.shape
    has = ((temporal[:, :, None, :] > 1) & rel[None, None]).any(axis=3)      # [b, L, t]
    out = np.full((b, N_TENSORS, L + 1), -1, dtype=np.int64)
    for c in range(1, L + 1):
        out[:, :, c] = np.where(has[:, :c], np.arange(c)[None, :, None], -1).max(axis=1)
    return out


@lru_cache(maxsize=4096)
def representative_masks(active: tuple[int, ...], windowed: tuple[bool, bool], rule2: bool) -> np.ndarray:
    """:func:`prefix_masks` of the representatives :func:`search.mapper.orders.level_orders` lists."""
    return prefix_masks(level_orders(active, windowed, rule2), active, windowed)


def level_savings(temporal: np.ndarray, windowed: tuple[bool, bool], level: int,
                  rule2: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``saved[b, o, t]`` (:func:`savings`) over each row's orders at ``level``, and how many each
    row has, ``[b]`` (the others repeat its first): the maximal classes (:func:`prefix_classes`)
    when ``rule2`` is ``None``, else the representatives of ``level_orders(active, windowed, rule2)``
    in their order."""
    b = temporal.shape[0]
    code = (temporal[:, level] > 1) @ (1 << np.arange(N_DIMS))
    groups = {int(c): np.flatnonzero(code == c) for c in np.unique(code)}
    actives = {c: tuple(d for d in range(N_DIMS) if c >> d & 1) for c in groups}
    classes = {c: prefix_classes(a, windowed) if rule2 is None else representative_masks(a, windowed, rule2)
               for c, a in actives.items()}
    n = max(len(v) for v in classes.values())
    saved = np.ones((b, n, N_TENSORS))
    count = np.zeros(b, dtype=np.int64)
    for c, rows in groups.items():
        val = savings(temporal[rows, level], classes[c])                        # [r, k, t]
        saved[rows] = np.concatenate([val, np.repeat(val[:, :1], n - val.shape[1], axis=1)], axis=1)
        count[rows] = val.shape[1]
    return saved, count


class OrderEnergy:
    """The level-order bound of one (layer, architecture) for the keep combinations ``keep_table``
    (``[K, L, t]``, :class:`search.mapper.leaves.LeafExpander`)."""

    def __init__(self, bm, keep_table: np.ndarray) -> None:
        self.bm = bm
        self.levels = bm.levels
        self.rel = _relevant(bm.windowed)
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

    def pair_costs(self, temporal, sx, sy, chain_cost, saved: list[np.ndarray]):
        """Per pair, the order-free part ``fixed[b, t, p, c]`` (pJ, with ``G``; ``inf`` where ``p`` may
        not keep ``t``) and per level ``m < L - 1`` the part depending on level ``m``'s order,
        ``per_level[m][b, t, p, c, o]`` (0 for the pairs whose ``m*`` is another level), for the
        orders whose prefix products are ``saved[m][b, o, t]`` (:func:`savings`)."""
        bm, L = self.bm, self.levels
        free = np.zeros(N_DIMS, dtype=bool)
        batch = bm.batch(temporal, sx, sy)
        keys = relaxed_keys(free, bm.dims, bm.rel, bm.window_pairs).keys
        mstar = deepest_relevant(temporal, self.rel)                          # [b, t, L+1]
        finite = np.isfinite(chain_cost)
        varies = (mstar >= 0)[:, :, None, :] & (np.arange(L + 1) < L)[None, None, None, :]
        fixed = np.where(varies, np.where(finite, 0.0, np.inf), chain_cost)
        b = temporal.shape[0]
        t = temporal.astype(np.float64)
        per_level = [np.zeros((b, N_TENSORS, L + 1, L + 1, sv.shape[1])) for sv in saved]
        for tt in range(N_TENSORS):
            if not (mstar[:, tt, :L] >= 0).any():
                continue
            terms = bm._tensor_terms(tt, batch, free, keys[tt])
            for m in range(L - 1):
                if not (mstar[:, tt, :L] == m).any():
                    continue
                irr = np.where(self.rel[tt][None], 1.0, t[:, m]).prod(axis=1)   # [b]
                lam = terms["lam"] * (irr[:, None] / saved[m][:, :, tt])[:, :, None]  # [b, o, L+1]
                for c in range(m + 1, L):
                    on = (mstar[:, tt, c] == m)[:, None] & finite[:, tt, :c, c]   # [b, p]
                    for p in range(c):
                        if on[:, p].any():
                            e, _ = bm._pair_energy(tt, p, c, dict(terms, lam=lam))
                            per_level[m][:, tt, p, c] = np.where(on[:, p, None], e * bm.layer.G, 0.0)
        return fixed, per_level

    def _chains(self, cost: np.ndarray, tt: int) -> np.ndarray:
        """Summed cost of each of tensor ``tt``'s chains, ``[b, chain, ...]`` for ``cost[b, t, p, c, ...]``."""
        return np.stack([sum(cost[:, tt, p, c] for p, c in pairs) for pairs in self.chain_pairs[tt]], axis=1)

    def _per_keep(self, cost: np.ndarray, keeps: np.ndarray) -> np.ndarray:
        """Summed over the tensors, the cost of keep combinations ``keeps``: ``[b, k, ...]``."""
        idx = self.chain_index[keeps]
        return sum(self._chains(cost, tt)[:, idx[:, tt]] for tt in range(N_TENSORS))

    def parts(self, temporal, sx, sy, chain_cost: np.ndarray, rule2: bool | None = None):
        """The module docstring's sum per keep combination of complete tilings: the order-free part
        ``fixed[b, K]`` and per level ``m < L - 1`` the part of each of its orders ``[b, K, o]``
        (pJ, without the MACs), over the orders of :func:`level_savings` with ``rule2``, with
        their counts ``[b]`` (later orders repeat the first)."""
        levels = [level_savings(temporal, self.bm.windowed, m, rule2) for m in range(self.levels - 1)]
        fixed, per_level = self.pair_costs(temporal, sx, sy, chain_cost, [sv for sv, _ in levels])
        keeps = np.arange(len(self.chain_index))
        return self._per_keep(fixed, keeps), [(self._per_keep(cost, keeps), n) for cost, (_, n) in zip(per_level, levels)]

    def keep_energy(self, temporal, sx, sy, chain_cost: np.ndarray) -> np.ndarray:
        """The least energy (pJ, without the MACs) over every loop order of each complete tiling and
        keep combination, ``[b, K]``: exact for tensors with no window (module docstring)."""
        fixed, per_level = self.parts(temporal, sx, sy, chain_cost)
        return fixed + sum(part.min(axis=2) for part, _ in per_level)


def combination_energy(fixed: np.ndarray, per_level: list[np.ndarray], keeps: np.ndarray) -> np.ndarray:
    """For one complete tiling, the energy bound (pJ, without the MACs) of each keep combination in
    ``keeps`` with one order per level ``m < L - 1``, ``[k, n_0, ..., n_{L-2}]``, from its parts
    (:meth:`OrderEnergy.parts`: ``fixed[K]``, ``per_level[m][K, n_m]``)."""
    energy = fixed[keeps].reshape((len(keeps),) + (1,) * len(per_level))
    for m, part in enumerate(per_level):
        shape = [len(keeps)] + [1] * len(per_level)
        shape[1 + m] = part.shape[1]
        energy = energy + part[keeps].reshape(shape)
    return energy


__all__ = ["OrderEnergy", "combination_energy", "prefix_classes", "prefix_masks", "representative_masks", "savings",
           "level_savings", "deepest_relevant", "LEVEL_ORDERS"]
