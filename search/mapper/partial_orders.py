"""The level-order bound of partial tilings: the loop orders chosen jointly over the tensors.

:mod:`search.mapper.bounds` credits every tensor of a partial tiling with its own best loop order
(``Lambda_c`` counts only the assigned loops of the levels above ``m*``), although the tensors
share one permutation per level; :mod:`search.mapper.order_energy` fixes that for complete
tilings. :func:`partial_order_energy` extends it to partial tilings.

**Claim.** Fix a partial tiling (the free dimensions' factors at 1, ``U`` the free dimensions)
and any mapping completing it. For tensor ``t`` and a pair ``(p, c)`` of consecutive keepers
with ``c < L``, let ``m*_a`` be the deepest level ``< c`` with an active *assigned* loop over
``Rel_t`` (:func:`search.mapper.order_classes.deepest_relevant` of the partial tiling) and, at
each level ``m``, ``o'_m`` the completion's order of level ``m`` restricted to the assigned
dimensions active there (one order per level, shared by every tensor). Then the completion's
arrivals satisfy ``a_c >= W_c P_c Lambda_c(o'_{m*_a})`` with (free factors at 1)

    Lambda_c(o) = prod_{m < m*_a} prod_{d not in Rel_t, assigned} t_{m,d}
                  * prod_{d not in Rel_t, assigned, d not in prefix_t(o)} t_{m*_a,d},

``prefix_t(o)`` the assigned active loops of level ``m*_a`` inside its first assigned active
``Rel_t`` loop in ``o``. Proof: the arrivals are at least ``tile * prod_{j <= j*} f_j`` for the
completion's ``j*`` (its innermost active ``Rel_t`` loop above ``c``; :mod:`search.mapper.bounds`,
"Arrivals", which holds for windowed inputs too with ``Rel_I`` their non-window dimensions).
The completion's deepest level ``m*`` with an active ``Rel_t`` loop is at or below ``m*_a`` (free
dimensions only add active loops). If ``m* > m*_a``, every loop of the levels ``<= m*_a`` is
outside ``j*`` and counts, which is at least ``Lambda_c(o)`` for every ``o``. If ``m* = m*_a``,
``j*`` is the first active ``Rel_t`` loop of level ``m*_a``, at or inside the first *assigned*
one, so the loops inside ``j*`` (the completion's prefix) that are assigned are among
``prefix_t(o'_{m*_a})``, and every other assigned loop of that level counts. Every term of the
pair's cost (:func:`search.mapper.pair_terms.pair_energy`) grows with ``Lambda_c`` and holds
with the completion's true product in its place (the argument of the bound for partial tilings,
for any ``j*``), the compulsory and sweep floors for every order. So the completion's energy with
keep set ``k`` is at least ``fixed_k + sum_m E_{k,m}(o'_m)``, ``E_{k,m}`` the summed costs of the
pairs of ``k``'s chains attached to level ``m``, a function of ``o'_m`` alone; hence at least
``fixed_k + sum_m min_o E_{k,m}(o)``, and the least of that over the keep sets ``k`` bounds every
completion. The orders tried are the maximal classes of the assigned active loops
(:func:`search.mapper.order_classes.prefix_classes`: costs fall as prefix sets grow), so every
``o'_m`` is at least as costly as one of them. Keep sets whose tiles (free extents at 1) overflow
a level are ``inf`` (tiles only grow). The terms use the relaxed split (:func:`search.mapper.splits.relaxed_keys`,
valid for every completion). For EDP the product with the partial tiling's cycles bound bounds
every completion (its energy and cycles are each at least their bounds).
"""

from __future__ import annotations

import time

import numpy as np

from formulation.axes import N_TENSORS
from search.mapper.bounds import SLACK, RelaxedTerms
from search.mapper.pair_terms import tensor_costs
from search.mapper.capacity import CAPACITY_REFETCH, capacity_energy
from search.mapper.channel_cases import channel_case_excess
from search.mapper.confinement import CONFINEMENT, confinement_energy, split_confinement
from search.mapper.leaves import chain_energy, chain_matrix, keeps_fit
from search.mapper.order_classes import deepest_relevant, level_savings
from search.mapper.order_energy import OrderEnergy
import search.mapper.window_refetch as window_refetch

#: Whether partial tilings' energy bound is raised to the least over the loop orders chosen jointly
#: (module docstring); off is weaker, still valid.
PARTIAL_ORDERS = True
#: Whether partial tilings' cycles (and EDP) bounds take each keep combination's throttled levels
#: (:func:`partial_order_bounds`); off is weaker, still valid.
PARTIAL_CYCLES = True
#: Whether each keep combination is also priced per split of the free fanout (:func:`partial_order_bounds`);
#: off is weaker, still valid.
SPLIT_KEEPS = True
#: Rows bounded at once (the per-order parts take ``rows x tensors x pairs x orders`` floats).
CHUNK = 1024


def partial_order_energy(oe: OrderEnergy, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                         chain_cost: np.ndarray, free: np.ndarray, mac_energy_pJ: float,
                         can_beat=None, cycles: np.ndarray | None = None) -> np.ndarray:
    """The energy bound (pJ, with the MACs) of partial tilings ``[b, L, 7]`` (free dimensions ``free``
    at 1) over every completion (module docstring), ``[b]``: :func:`partial_order_bounds`' first."""
    return partial_order_bounds(oe, temporal, sx, sy, chain_cost, free, mac_energy_pJ, can_beat, cycles)[0]


def partial_order_bounds(oe: OrderEnergy, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                         chain_cost: np.ndarray, free: np.ndarray, mac_energy_pJ: float,
                         can_beat=None, cycles: np.ndarray | None = None, with_cycles: bool = False,
                         deadline: float | None = None):
    """Energy (pJ, with the MACs), cycles and EDP (pJ x cycles) bounds of partial tilings ``[b, L, 7]``
    (free dimensions ``free`` at 1) over every completion (module docstring), ``[b]`` each, the
    least over the keep combinations that fit; ``chain_cost[b, t, p, c]`` the pair costs of
    :class:`search.mapper.bounds.Bounds` for the same rows (the relaxed split), ``cycles`` the rows'
    cycles bound (0 if not given).

    A keep combination's energy is the larger of the joint-order bound and, with
    :data:`search.mapper.capacity.CAPACITY_REFETCH`, the refetch its full buffers force
    (:func:`search.mapper.capacity.capacity_energy`). With ``with_cycles`` its cycles are also
    raised to each throttled level's words (the least of each level's orders, as for complete
    tilings, :meth:`search.mapper.order_energy.OrderEnergy.cycles`; the words are lower bounds for
    every completion like the costs), and the EDP bound is the least over the combinations of
    their energy times their cycles (one completion has one keep combination, and its energy and
    cycles are each at least that combination's bounds). With :data:`SPLIT_KEEPS` each keep
    combination is also priced per split ``z`` of the free fanout its row allows
    (:mod:`search.mapper.bounds`, "Splits"): a completion with split ``z`` and keep combination
    ``k`` spends at least the sum over ``k``'s chains of the pair costs priced with ``z`` (the
    argument of the split bound, for one chain per tensor), and at least ``k``'s split-free bound
    above, and the chain sum plus the excess of the capacity or of the confinement term over the
    split-free chain costs (each term raises some pairs' ``Lambda``; a pair cost ``max(s Lambda a,
    floor)`` rises with ``Lambda`` at least as much when its replication factor ``s`` is larger,
    and a split's factors are at least the relaxed split's), or of the windowed input's order terms
    (:func:`search.mapper.window_refetch.order_excess`, its claim 2; the largest of the three excesses);
    it takes at least the split's cycles (compute over ``Z``, the outer level's bandwidth)
    and ``k``'s. So every bound is the least over the (split, keep combination) pairs of the
    larger of each, the EDP of their product.

    With ``can_beat`` ((energy, cycles) bounds ``[r, K]`` -> which may still beat the incumbent) and
    ``cycles``, only the keep sets that fit and that some row may still take with their per-tensor
    chain energy (:func:`search.mapper.leaves.chain_energy`, itself a bound) get the joint orders;
    the others keep that chain energy and those cycles.

    After the monotonic-clock ``deadline`` the rows still to bound get the joint orders and the
    throttled cycles only: the capacity, confinement and per-split terms (each only raises a
    bound, so leaving it out keeps the bound valid) are skipped, and so are the per-split
    confinement's remaining products (:func:`search.mapper.confinement.split_confinement`), so
    that one expansion on a large array cannot overrun a search's time limit by minutes."""
    b = temporal.shape[0]
    out = np.zeros((3, b))
    base = np.zeros(b) if cycles is None else np.asarray(cycles, dtype=np.float64)
    matrix = chain_matrix(oe.keep_table)
    channels = oe.channels() if with_cycles else []
    for lo in range(0, b, CHUNK):
        rows = slice(lo, lo + CHUNK)
        t = temporal[rows]
        late = deadline is not None and time.monotonic() > deadline
        shared = RelaxedTerms(oe.bm, oe.bm.batch(t, sx[rows], sy[rows]), free)   # one batch for every term below
        fits = _keeps_fit(oe, shared.batch)
        least = mac_energy_pJ + chain_energy(chain_cost[rows], matrix)                    # [r, K]
        plain, extra = least.copy(), np.zeros_like(least)     # extra: the refetch terms over the chains
        cyc = np.repeat(base[rows][:, None], least.shape[1], axis=1)
        keeps = np.arange(len(oe.chain_index))
        if can_beat is not None:
            keeps = np.flatnonzero((can_beat(least, cyc) & fits).any(axis=0))
        if len(keeps):
            levels = [level_savings(t, oe.bm.windowed, m) for m in range(oe.levels - 1)]
            refetch = window_refetch.WINDOW_REFETCH and oe.bm.input_windowed
            fixed, per_level, words, words_level = oe.pair_costs(t, sx[rows], sy[rows], chain_cost[rows],
                                                                 [(sv, inn) for sv, inn, _ in levels], free=free,
                                                                 with_words=bool(channels) or refetch, shared=shared)
            joint = mac_energy_pJ + oe._per_keep(fixed, keeps)
            for part in per_level:
                joint = joint + oe._per_keep(part, keeps).min(axis=2)
            least[:, keeps] = np.maximum(least[:, keeps], joint)
            if refetch:
                ordered = window_refetch.order_excess(oe, deepest_relevant(t, oe.rel), chain_cost[rows], words_level,
                                                      shared, keeps)
                if ordered is not None:
                    extra[:, keeps] = np.maximum(extra[:, keeps], ordered)
            if CAPACITY_REFETCH and not late:
                forced = capacity_energy(oe, t, sx[rows], sy[rows], chain_cost[rows], free, mac_energy_pJ, keeps,
                                         shared)
                if forced is not None:
                    least[:, keeps] = np.maximum(least[:, keeps], forced)
                    extra[:, keeps] = np.maximum(extra[:, keeps], _excess(forced, plain[:, keeps]))
            if CONFINEMENT and not late:
                confined = confinement_energy(oe, t, sx[rows], sy[rows], chain_cost[rows], free, mac_energy_pJ,
                                              keeps, shared)
                if confined is not None:
                    least[:, keeps] = np.maximum(least[:, keeps], confined)
                    extra[:, keeps] = np.maximum(extra[:, keeps], _excess(confined, plain[:, keeps]))
            for l, kind, bw in channels:
                w = oe._per_keep(oe._channel(words, l, kind), keeps)
                for part in words_level:
                    w = w + oe._per_keep(oe._channel(part, l, kind), keeps).min(axis=2)
                cyc[:, keeps] = np.maximum(cyc[:, keeps], w / bw * SLACK)
        energy, cyc = np.where(fits, least, np.inf), np.where(fits, cyc, np.inf)
        out[:, rows] = energy.min(axis=1) * SLACK, cyc.min(axis=1), (energy * cyc).min(axis=1) * SLACK
        if SPLIT_KEEPS and len(keeps) and not late:
            idx = np.arange(lo, min(lo + CHUNK, b))
            if can_beat is not None:  # rows already cut stay cut
                sel = np.asarray(can_beat(out[0, idx][:, None], out[1, idx][:, None])).ravel()
                idx = idx[sel]
            if len(idx):
                r = idx - lo
                confine = (t[r], sx[rows][r], sy[rows][r], chain_cost[rows][r], plain[r][:, keeps]) if CONFINEMENT \
                    else None
                split = _split_keep_bounds(oe, shared.batch.take(r), free, keeps, energy[r], cyc[r], extra[r],
                                           mac_energy_pJ, confine, deadline)
                if split is not None:
                    out[:, idx] = np.maximum(out[:, idx], split)
    return out


def _excess(total: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """``total - plain`` where both are finite, else 0."""
    ok = np.isfinite(total) & np.isfinite(plain)
    return np.where(ok, total - np.where(ok, plain, 0.0), 0.0)


def _split_keep_bounds(oe: OrderEnergy, batch, free: np.ndarray, keeps: np.ndarray, energy: np.ndarray,
                       cycles: np.ndarray, extra: np.ndarray, mac_energy_pJ: float,
                       confine: tuple | None = None, deadline: float | None = None) -> np.ndarray | None:
    """``[3, b]``: the energy, cycles and EDP bounds with each keep combination of ``keeps`` priced per
    split of the free fanout (:func:`partial_order_bounds`) for the rows of ``batch``
    (:meth:`search.mapper.bounds.BoundModel.batch`); ``energy``/``cycles[b, K]`` the split-free
    bounds per keep combination (``inf`` where it does not fit), ``extra[b, K]`` the refetch terms'
    excess over the split-free chain costs; with ``confine`` (the rows' factors, chain costs and
    split-free chain sums per keep combination of ``keeps``) the confinement excess per split is
    added as well (:func:`search.mapper.confinement.split_confinement`, the larger of the two per
    split; none after ``deadline``), and so is the cheapest placement of a free C's loops
    (:func:`search.mapper.channel_cases.channel_case_excess`). ``None`` without splits."""
    bm = oe.bm
    free = np.asarray(free, dtype=bool)
    if not (free.any() and len(bm.fan_levels)):
        return None
    table = bm.split_table(free)
    if table is None:
        return None
    splits = table.for_rows(batch.capx, batch.capy)
    g = bm.layer.G
    total, words0 = mac_energy_pJ, []
    for tt in range(N_TENSORS):
        cost, _, w0 = tensor_costs(bm, tt, batch, free, splits.keys[tt])                  # [b, key, p, c]
        words0.append(w0 * g)
        chains = np.stack([sum(cost[:, :, p, c] for p, c in pairs) for pairs in oe.chain_pairs[tt]], axis=2) * g
        total = total + chains[:, splits.key[:, tt]][:, :, oe.chain_index[keeps, tt]]          # [b, J, k]
    split_cycles = bm.split_cycles(batch, free, splits, words0)                                 # [b, J]
    more = extra[:, None, keeps]
    if confine is not None:
        t, sx, sy, chain_cost, plain = confine
        per_split = split_confinement(oe, t, sx, sy, chain_cost, free, mac_energy_pJ, keeps, table, splits, plain,
                                      RelaxedTerms(bm, batch, free), deadline)
        if per_split is not None:
            more = np.maximum(more, per_split)
    channels = channel_case_excess(oe, batch, free, keeps, table, splits)
    if channels is not None:
        more = np.maximum(more, channels)
    e = np.maximum((total + more) * SLACK, energy[:, None, keeps])
    c = np.maximum(split_cycles[:, :, None], cycles[:, None, keeps])
    ok = splits.allowed[:, :, None] & np.isfinite(energy[:, None, keeps])
    e, c = np.where(ok, e, np.inf), np.where(ok, c, np.inf)
    rest = np.ones(energy.shape[1], dtype=bool)
    rest[keeps] = False                                     # the other keep combinations, split-free
    e_rest, c_rest = np.where(rest, energy, np.inf), np.where(rest, cycles, np.inf)
    return np.stack([np.minimum(e.min(axis=(1, 2)), e_rest.min(axis=1)) * SLACK,
                     np.minimum(c.min(axis=(1, 2)), c_rest.min(axis=1)),
                     np.minimum((e * c).min(axis=(1, 2)), (e_rest * c_rest).min(axis=1)) * SLACK])


def _keeps_fit(oe: OrderEnergy, batch) -> np.ndarray:
    """``[b, K]``: whether the tiles each keep combination keeps fit every level together, the
    free extents at 1 (tiles grow with the free factors: a combination that overflows now
    overflows in every completion), for the rows of ``batch`` (:meth:`search.mapper.bounds.BoundModel.batch`)."""
    return keeps_fit(oe.keep_table, batch.spans[:, :oe.levels].prod(axis=-1), oe.bm.sizes)


__all__ = ["partial_order_bounds", "partial_order_energy", "PARTIAL_CYCLES", "PARTIAL_ORDERS"]
