"""A small buffer confines a tensor's free loops: the confinement bound of partial tilings.

When a tensor ``t`` is kept at a level ``c`` too small for its free relevant dimensions, some of
their loops sit above ``c``. If none of ``t``'s assigned relevant loops is active between level 0
and ``c`` (``m*_a <= 0``), the bounds of :mod:`search.mapper.bounds` let ``t`` dodge the refetch by
the irrelevant loops of level 0 (the free loops might sit outside them) and let every other tensor
dodge those free loops too. Both cannot happen at once; :func:`confinement_energy` charges the
cheaper of the two.

**Claim.** Fix a partial tiling (free dimensions ``U`` at 1), a keep combination ``k`` and a
mapping completing both. Let ``t`` (without a sliding window) be kept at ``c`` (``1 <= c < L``)
with parent keeper ``p``, ``m*_a(t, c) <= 0`` (:func:`search.mapper.order_classes.deepest_relevant`),
and ``Q`` the free dimensions of bound > 1 in ``Rel_t``. Each extent ``e_d`` (``d in Q``) below
``c`` multiplies ``t``'s tile at least by ``e_d`` (a span ``1 + s (e - 1) >= e``; one dimension
per axis), so with the other free extents at 1 and the other tensors kept at ``c`` at their least
tiles, ``prod_Q e_d <= E = floor((size_c - others) / tile_t)``. The rest of ``Q`` is above ``c``;
its spatial part is at most ``S = prod_{m < c} cap_m``, so the temporal loops of ``Q`` at the levels
``< c`` multiply to at least ``tau = ceil(prod_Q D_d / (E S))`` (an integer). When ``tau > 1`` one of
them is active; so too when the tiles kept at ``c`` do not fit together with every ``e_d`` at
``D_d / S`` (the other free extents at 1; spans rise with extents): with no ``Q`` loop active
above ``c`` each ``e_d = D_d / prod_{m<c} s_{m,d} >= D_d / S``. Let ``m_f`` be the deepest level
``< c`` holding one.

* ``m_f >= 1``: ``t``'s deepest active ``Rel_t`` level above ``c`` is ``>= 1``, so every loop of level
  0 is outside ``j*`` and counts in the arrivals (:mod:`search.mapper.bounds`, "Arrivals"): the
  pair's ``Lambda_c`` (1, as ``m*_a <= 0``) may be ``Lambda0_t``, the product of the assigned
  ``t``-irrelevant factors of level 0.
* ``m_f = 0``: no ``Rel_t`` loop is active at the levels ``1 .. c - 1`` (``m*_a <= 0``, and ``Q``'s
  loops are all at level 0), so ``t``'s ``j*`` is its innermost ``Rel_t`` loop at level 0. Let ``j0``
  be level 0's innermost active loop and ``d0`` its dimension (active at level 0: assigned with
  ``t_{0,d0} > 1``, or free). If ``d0 in Rel_t``, ``j* = j0`` and again every loop of level 0
  counts: ``Lambda0_t``. Otherwise (*case B*) ``f_d = t_{0,d}`` (``d in Q``, divisors of ``D_d``)
  multiply to ``>= tau``; as no ``Q`` loop is active at the levels ``1 .. c - 1``, each extent
  below ``c`` is ``e_d = D_d / (f_d prod_{m<c} s_{m,d}) >= D_d / (f_d S)``, so the tiles kept at
  ``c`` with those extents (the other free ones at 1) must fit ``size_c`` together, which rules
  some tuples out; and every pair ``(p'', c'')`` (``1 <= c'' < L``) of another tensor ``t''``
  that counts every loop of level 0 may have its ``Lambda`` multiplied by ``conf_t'' = prod_{d in
  Q, d not in Rel_t''} f_d`` (level-0 loops of free dimensions, disjoint from the assigned loops it
  counts): (a) the pairs with ``m*_a(t'', c'') >= 1`` (their ``Lambda`` already holds the assigned
  loops of level 0); (b) if ``d0 in Rel_t''``, every pair of ``t''``: ``j0`` is an active
  ``Rel_t''`` loop above ``c''``, so its deepest such level is ``>= 0``; if ``>= 1`` every loop of
  level 0 is outside ``j*``, if 0 then ``j* = j0``, level 0's innermost loop. Its ``Lambda`` is then
  at least ``Lambda0_t''`` (the assigned ``t''``-irrelevant factors of level 0; its own ``Lambda``
  when ``m*_a >= 1``) times ``conf_t''``.

In the first two cases (*case A*) every loop of level 0 counts, the free ones too: the temporal
factors of level 0 over the free dimensions outside ``Rel_t`` are disjoint from the assigned loops
``Lambda0_t`` counts and multiply to at least ``F1_t``, the least product the keepers of level 1
force above it (:mod:`search.mapper.capacity`: ``tau_{1,d}`` per dimension, multiplied, or the joint
factor of those dimensions at level 1, the larger; both bound the temporal factors at the levels
``< 1``, level 0's, of the completion with keep combination ``k``; 1 where nothing is forced). So
``t``'s pair may take ``Lambda0_t F1_t``. (Measured on ResNet-18's ``layer1_3x3`` on ``eyeriss-like``:
the Outputs kept in the global buffer with K below it force P and Q partly into DRAM, whose loops
then refetch the Weights confined in ``weights_spad``.)

Every pair cost grows with ``Lambda`` (:func:`search.mapper.pair_terms.pair_energy`), so the
completion's energy is at least ``min(E_A, E_B)``: ``E_A`` the keep combination's chain energy with
``t``'s pair at ``Lambda0_t F1_t``, ``E_B`` the least over the ``(d0, f)`` the row allows of the chain
energy with (a) and (b) applied (the relaxed split, :func:`search.mapper.splits.relaxed_keys`).
:mod:`search.mapper.partial_orders` takes the larger of this and its other bounds per keep
combination. Rows with more than :data:`MAX_TUPLES` factor tuples skip the rule (weaker, valid).

**Per split** (:func:`split_confinement`). ``S`` bounds the spatial part of ``Q`` above ``c`` by the
fanout left, which lets the confined loops all go spatial even where the split bound of
:mod:`search.mapper.partial_orders` prices a split that gives ``Q`` far less (on ResNet-18's
``layer1_3x3`` on ``eyeriss-like``: the splits that fill every PE leave one of R and S with a
spatial factor of 1, and a full weights scratchpad then confines it above). A completion taking
split ``z`` (:mod:`search.mapper.splits`) has ``prod_{m < c} s_{m,d} <= z_d`` for each free ``d``
(its spatial factors above ``c`` are among those over every fanout), so the spatial product of
``Q`` above ``c`` is at most ``prod_{d in Q} z_d``, and each single ``prod_{m<c} s_{m,d}`` too (the
others are ``>= 1``); the largest of that product over the placement vectors gathered in the
split (:meth:`search.mapper.splits.SplitTable.max_product`; the completion's own vector is one of
them) bounds it for every completion taking the split. Every step above holds with ``S`` replaced
by the smaller of the two: ``tau``, the tuples that fit, and cases A and B. So a completion with
split ``z`` and keep combination ``k`` spends at least the split's chain sum plus the excess of
this confinement energy over ``k``'s split-free chain sum (the argument of
:func:`search.mapper.partial_orders.partial_order_bounds` for the split-free excess: each case
raises some pairs' ``Lambda``, and a pair cost rises with ``Lambda`` at least as much under a
split's replication as under the relaxed one). The rule's bound is the largest over the confined
tensors' bounds, each reading only its own ``S``, so it is computed per tensor once per distinct
product (a split's excess is the largest of its tensors'), and skipped where the product is at
least the fanout left above every level of every row (no tighter than the split-free rule).

On large arrays the distinct products are many (23 at 64x64 PEs on ``layer1_3x3``), and each costs
one pass of the rule; they are gathered into at most :data:`MAX_PRODUCT_GROUPS` groups of
neighbouring values, each priced at its largest product. A larger ``S`` only weakens every step
above (``tau`` falls, more tuples fit, and case B's least is over more of them), so a split priced
with a product at least its own keeps a valid bound. Past a ``deadline`` the remaining groups are
left out (an excess of 0: the split-free rule's), so a search's time limit holds on any array.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from formulation.axes import DIMS, N_TENSORS, Tensor
from formulation.factors import divisors
from search.mapper.bounds import RelaxedTerms
from search.mapper.capacity import forced_factors, joint_factors
from search.mapper.pair_terms import pair_energy
from search.mapper.order_classes import deepest_relevant

#: Whether partial tilings' per-keep-combination energy is raised by the confinement rule (module
#: docstring); off is weaker, still valid.
CONFINEMENT = True
#: Whether case A also counts the free loops of level 0 that the keepers of level 1 force there
#: (``F1_t``, module docstring); off is weaker, still valid.
FORCED_TOP = True
#: Whether the split bound of partial tilings takes the confinement per split, with ``S`` at most the
#: split's spatial product of the confined dimensions (module docstring, "Per split"); off is weaker, still valid.
SPLIT_CONFINEMENT = True
#: Most tuples ``f`` (divisors of the confined dimensions) enumerated per confined pair.
MAX_TUPLES = 256
#: Most distinct spatial products priced per tensor by :func:`split_confinement` (module docstring).
MAX_PRODUCT_GROUPS = 8


def _scaled(bm, tt, p, c, terms, factor):
    """Pair ``(p, c)`` energy of tensor ``tt`` (with ``G``) with ``Lambda_c`` times ``factor[b, n]``, ``[b, n]``."""
    out = pair_energy(bm, tt, p, c, dict(terms, lam=terms["lam"] * factor[:, :, None]))[0] * bm.layer.G
    return np.broadcast_to(out, factor.shape)


def confinement_energy(oe, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray, chain_cost: np.ndarray,
                       free: np.ndarray, mac_energy_pJ: float, keeps: np.ndarray,
                       shared: RelaxedTerms | None = None, spatial_q: dict | None = None,
                       top_forced: dict | None = None) -> np.ndarray | None:
    """The energy bound (pJ, with the MACs) of each keep combination ``keeps`` of partial tilings by the
    confinement rule (module docstring), ``[b, k]`` (``-inf`` where it says nothing); ``None`` when
    it applies nowhere. ``chain_cost[b, t, p, c]`` (:class:`search.mapper.bounds.Bounds`, the relaxed
    split) prices every pair the rule leaves alone and marks the parents that may keep a tensor;
    ``shared`` (the same rows and ``free``) gives the batch and the relaxed pair terms already computed.
    ``spatial_q`` (tensor -> number), where given, bounds the spatial product of that tensor's ``Q``
    over every fanout in the completions priced ("Per split" in the module docstring); ``S`` is then
    the smaller of it and the fanout left, and only those tensors are priced. ``top_forced`` (a dict,
    filled on first use) shares the forced factors of level 0 between calls on the same rows and
    keep combinations."""
    bm = oe.bm
    free = np.asarray(free, dtype=bool)
    if shared is None:
        shared = RelaxedTerms(bm, bm.batch(temporal, sx, sy), free)
    L = bm.levels
    b = temporal.shape[0]
    batch = shared.batch
    tile = batch.spans.prod(axis=-1)                                                     # [b, L+1, t]
    mstar = deepest_relevant(temporal, bm.rel)
    t = temporal.astype(np.float64)
    cap_above = batch.cap_above
    out = np.full((b, len(keeps)), -np.inf)
    hit = False
    fit_cache: dict = {}     # (level, tensors kept there, Q) -> _tuples_fit
    top_forced = {} if top_forced is None else top_forced  # tensor -> [b, k]: _top_forced, on first use
    for j, k in enumerate(keeps):
        chains = [oe.chain_pairs[tt][oe.chain_index[k, tt]] for tt in range(N_TENSORS)]
        base = sum(chain_cost[:, tt, p, c] for tt in range(N_TENSORS) for p, c in chains[tt]) + mac_energy_pJ
        for tt in range(N_TENSORS):
            if tt == Tensor.I and bm.input_windowed or spatial_q is not None and tt not in spatial_q:
                continue
            q = [int(d) for d in DIMS if free[d] and bm.rel[tt][d] and bm.dims[d] > 1]
            for p, c in chains[tt]:
                if not q or c >= L or not bm.bounded[c]:
                    continue
                others = sum(tile[:, c, o] for o in range(N_TENSORS) if o != tt and oe.keep_table[k, c, o])
                room = np.floor((bm.sizes[c] - others) / tile[:, c, tt])
                need = math.prod(int(bm.dims[d]) for d in q)
                spatial = cap_above[:, c] if spatial_q is None or tt not in spatial_q \
                    else np.minimum(cap_above[:, c], spatial_q[tt])
                tau = np.ceil(need / (np.maximum(room, 1.0) * spatial) - 1e-9)
                tuples = list(itertools.product(*[divisors(int(bm.dims[d])) for d in q]))
                if len(tuples) > MAX_TUPLES:
                    continue
                key = (c, tuple(oe.keep_table[k, c].tolist()), tuple(q))
                if key not in fit_cache:
                    fit_cache[key] = _tuples_fit(bm, oe.keep_table[k, c], batch.ext[:, c], q, tuples, spatial, c)
                fits = fit_cache[key]
                active = (tau > 1) | ~fits[:, 0]                 # tuples[0]: every f_d = 1
                rows = (mstar[:, tt, c] <= 0) & active & (room >= 1) & np.isfinite(base)
                if not rows.any():
                    continue
                terms = shared.terms
                hit = True
                lam0 = np.where((~bm.rel & ~free)[None], t[:, :1], 1.0).prod(axis=2)            # [b, t]
                cost = np.where(np.isfinite(chain_cost[:, tt, p, c]), chain_cost[:, tt, p, c], 0.0)
                lam_a = lam0[:, tt]
                if FORCED_TOP:
                    if tt not in top_forced:
                        top_forced[tt] = _top_forced(bm, oe.keep_table[keeps], batch, free, tt, top_forced)
                    lam_a = lam_a * top_forced[tt][:, j]
                e_a = base + np.maximum(_scaled(bm, tt, p, c, terms[tt], lam_a[:, None])[:, 0] - cost, 0.0)
                e_b = _case_b(bm, tt, q, tuples, tau, fits, chains, chain_cost, terms, mstar, t, free, base, lam0)
                bound = np.where(rows, np.minimum(e_a, e_b), -np.inf)
                out[:, j] = np.maximum(out[:, j], bound)
    return out if hit else None


def split_confinement(oe, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray, chain_cost: np.ndarray,
                      free: np.ndarray, mac_energy_pJ: float, keeps: np.ndarray, table, splits,
                      plain: np.ndarray, shared: RelaxedTerms | None = None,
                      deadline: float | None = None) -> np.ndarray | None:
    """``[b, J, k]``: per split ``j`` of ``splits`` (from ``table``, :class:`search.mapper.splits.SplitTable`)
    and keep combination of ``keeps``, the excess of the confinement energy over ``plain[b, k]`` (the
    split-free chain sums, pJ with the MACs) when each tensor's ``Q`` takes at most the split's
    spatial product (module docstring, "Per split"); 0 where it says nothing; ``None`` when no split
    tightens ``S`` (:data:`SPLIT_CONFINEMENT` off, no placement index, or every product at least the
    fanout left above every level)."""
    bm = oe.bm
    if not SPLIT_CONFINEMENT or splits.index is None:
        return None
    free = np.asarray(free, dtype=bool)
    whole = float(np.prod((bm.fan_x * bm.fan_y).astype(np.float64)))
    tts = [tt for tt in range(N_TENSORS) if not (tt == Tensor.I and bm.input_windowed)
           and (free & bm.rel[tt] & (bm.dims > 1)).any()]
    if not tts:
        return None
    if shared is None:
        shared = RelaxedTerms(bm, bm.batch(temporal, sx, sy), free)
    limit = min(whole, float(shared.batch.cap_above[:, 1:bm.levels].max()))   # S is at most the fanout left
    out = np.zeros((temporal.shape[0], len(splits.total), len(keeps)))
    hit = False
    forced: dict = {}
    for tt in tts:   # the rule's bound is the largest over the tensors', each reading its own S only
        prods = table.max_product(free & bm.rel[tt] & (bm.dims > 1))[splits.index]
        priced = product_groups(prods, limit)
        for v in np.unique(priced[np.isfinite(priced)]):
            if deadline is not None and time.monotonic() > deadline:
                return out if hit else None
            conf = confinement_energy(oe, temporal, sx, sy, chain_cost, free, mac_energy_pJ, keeps, shared,
                                      {tt: float(v)}, forced)
            if conf is None:
                continue
            ok = np.isfinite(conf) & np.isfinite(plain)
            excess = np.maximum(np.where(ok, conf - np.where(ok, plain, 0.0), 0.0), 0.0)
            on = priced == v
            out[:, on] = np.maximum(out[:, on], excess[:, None])
            hit = True
    return out if hit else None


def product_groups(prods: np.ndarray, limit: float, groups: int | None = None) -> np.ndarray:
    """Each split's product raised to the largest of its group (module docstring), ``inf`` where the
    product is at least ``limit`` (nothing to price): the distinct products below ``limit``, sorted,
    are cut into at most ``groups`` (:data:`MAX_PRODUCT_GROUPS`) runs of nearly equal length."""
    groups = MAX_PRODUCT_GROUPS if groups is None else groups
    prods = np.asarray(prods, dtype=np.float64)
    values = np.unique(prods[prods < limit])
    out = np.full(prods.shape, np.inf)
    if not len(values):
        return out
    ends = np.unique(np.ceil(np.arange(1, groups + 1) * len(values) / groups).astype(np.int64) - 1)
    top = values[ends][np.searchsorted(ends, np.arange(len(values)))]      # each value's group maximum
    below = prods < limit
    out[below] = top[np.searchsorted(values, prods[below])]
    return out


def _top_forced(bm, table: np.ndarray, batch, free: np.ndarray, tt: int, cache: dict) -> np.ndarray:
    """``F1[b, k]``: a lower bound on the product of the temporal factors of level 0 over the free
    dimensions irrelevant to tensor ``tt`` (outside ``Rel_tt``), per keep combination of ``table``: those
    that the keepers of level 1 cannot hold below them (:func:`search.mapper.capacity.forced_factors`
    at level 1, one dimension at a time, multiplied; :func:`search.mapper.capacity.joint_factors`
    at level 1, jointly; the larger of the two), 1 where nothing is forced (module docstring, case A).
    ``cache`` keeps the one-dimension factors (key ``"taus"``) for the other tensors."""
    b, K = batch.t.shape[0], table.shape[0]
    if bm.levels < 2:
        return np.ones((b, K))
    if "taus" not in cache:
        cache["taus"] = forced_factors(bm, table, batch, free, top=1)
    dims = [int(d) for d in np.flatnonzero(free & ~bm.rel[tt] & (bm.dims > 1))]
    single = np.ones((b, K))
    for d in dims:
        if d in cache["taus"]:
            single = single * cache["taus"][d][:, :, 1]
    joint = joint_factors(bm, table, batch, dims, top=1)
    return single if joint is None else np.maximum(single, joint[:, :, 1])


def _tuples_fit(bm, kept: np.ndarray, ext: np.ndarray, q: list[int], tuples: list, spatial: np.ndarray,
                c: int) -> np.ndarray:
    """``[b, n]``: whether the tiles kept at ``c`` (``kept[t]``) fit with each tuple ``f`` of case B, the
    extents of ``Q`` below ``c`` at their least ``D_d / (f_d S)`` (no ``Q`` loop at the levels
    ``1 .. c - 1``; ``S = spatial`` the fanout above ``c``), the other free ones at 1 (``ext[b, 7]``)."""
    f = np.array(tuples, dtype=np.float64)                                               # [n, |Q|]
    e = np.repeat(ext[:, None], len(f), axis=1)                                          # [b, n, 7]
    for i, d in enumerate(q):
        e[:, :, d] = np.maximum(1.0, bm.dims[d] / (f[None, :, i] * spatial[:, None]))
    tile = bm.spans(e).prod(axis=-1)                                                    # [b, n, t]
    return (tile * kept[None, None]).sum(axis=2) <= bm.sizes[c]


def _case_b(bm, tt, q, tuples, tau, fits, chains, chain_cost, terms, mstar, t, free, base, lam0) -> np.ndarray:
    """``E_B[b]`` of the module docstring: the least over the ``(d0, f)`` each row allows and whose tiles
    fit (``fits[b, n]``), ``inf`` if none."""
    b = t.shape[0]
    f = np.array(tuples, dtype=np.float64)                                               # [n, |Q|]
    feasible = (f.prod(axis=1)[None, :] >= tau[:, None]) & fits                          # [b, n]
    d0s = [int(d) for d in DIMS if not bm.rel[tt][d] and bm.dims[d] > 1]
    sigs = {}
    for d in d0s:
        allowed = np.full(b, True) if free[d] else (t[:, 0, d] > 1)
        sig = tuple(bool(bm.rel[o][d]) for o in range(N_TENSORS))
        sigs[sig] = allowed | sigs.get(sig, np.zeros(b, dtype=bool))
    best = np.full(b, np.inf)
    for sig, allowed in sigs.items():
        total = np.broadcast_to(base[:, None], feasible.shape).copy()
        for o in range(N_TENSORS):
            if o == tt:
                continue
            irr = np.array([not bm.rel[o][d] for d in q])
            factor = np.broadcast_to(np.where(irr[None], f, 1.0).prod(axis=1)[None], feasible.shape)
            for p, c in chains[o]:
                if c >= bm.levels:
                    continue
                deep = (mstar[:, o, c] >= 1)[:, None]
                if sig[o]:
                    e = _scaled(bm, o, p, c, terms[o], factor * np.where(deep, 1.0, lam0[:, o, None]))
                elif deep.any():
                    e = np.where(deep, _scaled(bm, o, p, c, terms[o], factor), chain_cost[:, o, p, c][:, None])
                else:
                    continue
                finite = np.isfinite(chain_cost[:, o, p, c])[:, None]
                total = total + np.where(finite, np.maximum(e - np.where(finite, chain_cost[:, o, p, c][:, None], 0.0),
                                                            0.0), 0.0)
        total = np.where(feasible & allowed[:, None], total, np.inf)
        best = np.minimum(best, total.min(axis=1))
    return best


__all__ = ["CONFINEMENT", "FORCED_TOP", "MAX_PRODUCT_GROUPS", "MAX_TUPLES", "SPLIT_CONFINEMENT",
           "confinement_energy", "product_groups", "split_confinement"]
