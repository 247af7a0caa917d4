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
  windowed input see :func:`search.mapper.window.window_mac_words`: spatial window factors are not multicast);
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

**Compulsory traffic.** Every used element of Weights and Inputs reaches the MACs through every
keeper of its chain, and the first arrival of an element into any instance of a keeper ``c`` is
a fill from its parent ``p`` (links only move words between siblings that already hold them),
each delivered by a read of ``p``; every output's final value is written from ``c`` into ``p`` at
least once. So, per group, ``reads_p >= |t|`` and ``fills_c >= |t|`` for Weights and Inputs
(``|I|`` counts the input coordinates some MAC reads, :func:`formulation.bound.layer_terms.compulsory_words`)
and ``updates_p >= |O|``, for every pair including ``c = L``; each count above is raised to this
(both bound the same count). This is what bounds the inputs' traffic while their window
dimensions are free (``W_c`` then counts extents of 1). Refetch: let ``m*`` be the deepest level
above ``c`` with an active loop over ``Rel`` (N or C for a windowed input) and ``Lambda'_c`` the
product of the assigned loops above ``m*`` over the dimensions irrelevant to the tensor in the
plain sense (K for the inputs, whatever the window). Each such loop encloses that active loop;
the first and last tiles of one of its iterations differ in a coordinate moved by it (a
single-dimension axis: N, C for the inputs), so they share no element, and every element used
in the next iteration is absent from ``c`` at some step in between and arrives again. The
iterations use the same elements (the loop is irrelevant), so the children of one instance of
``p`` receive every element once per iteration: ``fills_c, reads_p >= Lambda'_c |t| SI'``,
``SI'`` the assigned spatial factors of those irrelevant dimensions above ``c`` (resp. ``p``),
whose instances each need all of it. For Weights and Outputs (and inputs without a window) this
is already implied by ``REL SI Lambda``; for a windowed input it adds the window sweep the
``W_c`` term misses. No fill is claimed where links may lower the child's fills, nor at a fanout
into the MACs. Per instance: with the window dimensions spread over the fanouts above ``c``,
each instance of ``c`` receives at least the sumset of its own window coordinates, and its
parent reads that over the window multicast (:mod:`search.mapper.instance_union`, which holds the
proof; no fanout at ``c - 1``, so no links onto ``c``).

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
dimension only to one once the input's window pair is left out of ``Rel``). Per row only the
sets of dimensions that can be ``d0`` are tried: a free one (of bound > 1), or an assigned one
active at the deepest level above ``c`` with an assigned active loop (the loops of a deeper
level are inside those of shallower ones, so ``j0`` lies in the deepest level with an active
loop, which a free dimension alone can make deeper); with neither, no loop is active above ``c``
and every set is exact. When the choices over the levels exceed ``MAX_FORCED_COMBOS``, every row
tries the minimal sets instead (a set that contains another gives a larger cost). The energy
bound is the least, over one such set per level ``c = 1 .. min(L - 1, MAX_FORCED_LEVELS)`` (levels not enumerated
use ``Lambda_c``: weaker, still valid), of the summed cheapest chains: the completion's own sets
are among the choices and each tensor's true cost is at least its cheapest chain under them.
The per-keep-set bounds of complete tilings take the same least over the choices
(:meth:`Bounds.forced_chain_costs`, :func:`search.mapper.leaves.keep_set_energy`): a keep set fixes
the chains, and its completions' sets are again among the choices.

**Level orders**: for complete tilings :mod:`search.mapper.order_energy` takes, per keep set, the
least over all loop orders jointly (each pair's ``Lambda_c`` depends on one level's order only);
the sets above relax it.

**Splits** (joint over the tensors, partial tilings). The terms above credit every tensor with
the whole fanout left, ``cap``, at once; but in a completion each free dimension ``d`` has one
total spatial product ``z_d`` over all fanouts, and the vector ``z`` must fit the fanout left at
every level in X and Y (:mod:`search.mapper.splits` enumerates every such *split*, exactly, per
row). With ``m_t = prod_{d in U, d not in Rel_t} z_d`` the free factors irrelevant to ``t`` at the
levels ``>= p`` multiply to at most ``min(m_t, prod_{m>=p} cap_m)`` and those at the levels
``< p`` to at least ``m_t / prod_{m>=p} cap_m`` (and ``>= 1``). So, for the completion's own
``z``: ``SI_p >= SI_p(assigned) max(1, m_t / prod_{m>=p} cap_m)`` (replication above ``p``, in
every pair with ``p`` or ``c`` below a fanout: fills of per-PE copies), the MAC-level words'
free divisor is at most ``min(prod_{m>=p} cap_m, m_t)``, ``T_irr = T_irr(assigned) prod_{U, irr}
D_d / m_t``, a windowed input's MAC reads use ``z_K`` and, per window axis, the least ``z`` of
its pair's free dimensions in place of ``D_d`` (:func:`search.mapper.window.window_mac_words`), and
``compute = prod_assigned t prod_U D_d / Z``, ``Z = prod_U z_d``. Every other term holds
unchanged. Hence every completion has energy ``>= E(z)`` (the MACs plus the least over the
innermost loop's forced sets of the summed cheapest chains, each chain priced with ``z``) and
cycles ``>= T(z)`` for its own ``z``, and the bound is ``min_z E(z)``, ``min_z T(z)`` and, for
EDP, ``min_z E(z) T(z)``: one completion's energy and cycles share its split, so this is at
least ``min E x min T``. Which split the minimum picks differs per row and per objective.
Since the dimensions irrelevant to Weights (N, P, Q), to Outputs (C, R, S) and, for this count,
to Inputs (K) are disjoint, ``m_W m_O z_K = Z <= cap``: no two tensors get the same PEs for
free. A tensor's chain costs depend on ``z`` only through its *key* (``m_t``; for a windowed
input ``z_K`` and the window minima, with ``m_I`` taken at the least over the splits sharing
that key, a relaxation), so they are computed once per key and summed per split. The bound
without splits (``m_t`` between 1 and the product of its free bounds) is below every split's;
rows whose unsplit bound already reaches the incumbent keep it (they are cut either way), the
others take the larger of the two. Complete tilings have no free dimension: nothing changes.

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
from functools import cached_property

import numpy as np

from formulation.axes import DIMS, N_AXES, N_TENSORS, RELEVANCE, Tensor, projection
from formulation.bound.layer_terms import compulsory_words
from formulation.goals import Objective
from formulation.specs.types import Architecture, Layer
from search.mapper.chains import cheapest_chains
from search.mapper.objective import objective_of
from search.mapper.orders import non_window_dims_of_inputs
from search.mapper.pair_terms import tensor_costs, tensor_terms
from search.mapper.space import Space, windowed_axes
from search.mapper.splits import SplitTable, Splits, relaxed_keys, window_pairs

SLACK = 1.0 - 1e-9
#: Levels (from the outermost storage level below level 0) at which the innermost loop's forced
#: sets are enumerated (``|sets| ** levels`` chain problems per bound); forcing fewer is weaker, still valid.
MAX_FORCED_LEVELS = 3
#: Whether each row tries only the sets of the dimensions that can be its innermost loop above a
#: level (module docstring, "Innermost loop"), as long as there are at most ``MAX_FORCED_COMBOS``
#: choices of sets over the levels; otherwise every row tries the minimal sets (weaker, still valid).
FORCED_PER_ROW = True
MAX_FORCED_COMBOS = 64
#: Whether partial tilings are bounded jointly over the splits of the free fanout (module docstring,
#: "Splits"); off, each tensor gets the whole fanout left (weaker, still valid).
JOINT_SPLITS = True
#: Whether every pair's counts are raised to the tensor's compulsory traffic (module docstring,
#: "Compulsory traffic"); off is weaker, still valid.
COMPULSORY_TRAFFIC = True


@dataclass(frozen=True)
class Bounds:
    """Per partial tiling: ``energy_pJ``, ``cycles``, ``edp_pJ_cycles`` and the per-tensor chain costs.

    ``energy_pJ``, ``cycles`` and ``edp_pJ_cycles`` are each the least over the splits a row's
    completions can take (module docstring, "Splits"), so ``edp_pJ_cycles >= energy_pJ * cycles``.
    ``chain_cost[b, t, p, c]`` bounds the energy (pJ, already times ``G``) tensor ``t`` spends
    between a keeping parent ``p`` and the next keeping level ``c`` (``c = L``: the MACs), ``inf``
    where ``p`` may not keep ``t``, each tensor with the whole fanout left (exact for complete
    tilings, which have no free dimension); ``min_chain[b, t]`` is the cheapest chain's cost.
    """

    energy_pJ: np.ndarray
    cycles: np.ndarray
    chain_cost: np.ndarray
    min_chain: np.ndarray
    mac_energy_pJ: float
    chain_cost_full: np.ndarray | None = None
    forced_levels: tuple = ()
    forced_sets: tuple = ()
    edp_pJ_cycles: np.ndarray | None = None
    forced_allowed: np.ndarray | None = None

    def forced_chain_costs(self):
        """``(chain_cost with one forced set per enumerated level paying Lambda_full, rows)`` per
        choice of sets (module docstring, "Innermost loop"), ``rows[b]`` whether row ``b`` may
        make that choice; nothing without forcing."""
        if not self.forced_levels:
            return
        for combo in itertools.product(range(len(self.forced_sets)), repeat=len(self.forced_levels)):
            c2 = self.chain_cost.copy()
            for c, k in zip(self.forced_levels, combo):
                forced = self.forced_sets[k]
                c2[:, forced, :, c] = self.chain_cost_full[:, forced, :, c]
            yield c2, _combo_rows(self.forced_allowed, combo, len(c2))

    def value(self, objective: Objective, clock_GHz: float) -> np.ndarray:
        v = objective_of(objective, self.energy_pJ, self.cycles, clock_GHz)
        if objective is Objective.EDP and self.edp_pJ_cycles is not None:
            v = np.maximum(v, objective_of(objective, self.edp_pJ_cycles, 1.0, clock_GHz))
        return v


def _combo_rows(allowed: np.ndarray | None, combo: tuple, b: int) -> np.ndarray:
    """Rows that may take one forced set per level (``combo``: indices into the sets)."""
    if allowed is None:
        return np.ones(b, dtype=bool)
    out = np.ones(b, dtype=bool)
    for lvl, k in enumerate(combo):
        out &= allowed[:, lvl, k]
    return out


@dataclass(frozen=True)
class _Batch:
    """The split-independent quantities of a batch of partial tilings."""

    t: np.ndarray          # temporal factors, [b, L, 7]
    s: np.ndarray          # spatial factors x * y, [b, L, 7]
    spans: np.ndarray      # tile spans with free extents at 1, [b, L+1, t, a]
    ok: np.ndarray         # [b, t, L]: level p may keep t (hardware, tile alone fits)
    cap_below: np.ndarray  # prod_{m>=p} cap_m, [b, L + 1] (1 at L)
    capx: np.ndarray       # fanout left in X / Y at the fanout levels, [b, F]
    capy: np.ndarray
    ext: np.ndarray        # extents at each level, free dimensions at 1, [b, L+1, 7]
    cap: np.ndarray        # fanout left per level, [b, L]

    def take(self, rows: np.ndarray) -> _Batch:
        return _Batch(*(getattr(self, f)[rows] for f in ("t", "s", "spans", "ok", "cap_below", "capx", "capy",
                                                         "ext", "cap")))

    @property
    def cap_above(self) -> np.ndarray:
        """``prod_{m<c} cap_m``, the fanout left above each level, ``[b, L + 1]`` (1 at level 0)."""
        return np.concatenate([np.ones((self.cap.shape[0], 1)), np.cumprod(self.cap, axis=1)], axis=1)


class RelaxedTerms:
    """One batch of partial tilings (:meth:`BoundModel.batch`) and, computed on first use, each tensor's
    pair terms under the relaxed split (:func:`search.mapper.splits.relaxed_keys`,
    :func:`search.mapper.pair_terms.tensor_terms`): what the partial-tiling bounds of one batch
    (:mod:`search.mapper.partial_orders`, :mod:`search.mapper.capacity`, :mod:`search.mapper.confinement`)
    share."""

    def __init__(self, bm: BoundModel, batch: _Batch, free: np.ndarray) -> None:
        self.bm, self.batch, self.free = bm, batch, np.asarray(free, dtype=bool)

    @cached_property
    def terms(self) -> list[dict]:
        bm = self.bm
        keys = relaxed_keys(self.free, bm.dims, bm.rel, bm.window_pairs).keys
        return [tensor_terms(bm, tt, self.batch, self.free, keys[tt]) for tt in range(N_TENSORS)]


class BoundModel:
    """The fixed part of the bounds for one (layer, architecture)."""

    def __init__(self, layer: Layer, arch: Architecture, space: Space | None = None) -> None:
        self.layer, self.arch = layer, arch
        self.space = space if space is not None else Space(layer, arch)
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
        self.window_pairs = window_pairs(self.proj, self.window_axes)
        self.fan_x = np.array([arch.fanout(l)[0] for l in range(self.levels)], dtype=np.int64)
        self.fan_y = np.array([arch.fanout(l)[1] for l in range(self.levels)], dtype=np.int64)
        self.fan_levels = np.flatnonzero(self.fan_x * self.fan_y > 1)
        # links at a fanout into the MACs may save the last keeper any share of its reads and updates
        self.mac_fanout_keep = 0.0 if self.fan_x[-1] * self.fan_y[-1] > 1 else 1.0
        self.sizes = np.array([lv.size_words if lv.size_words is not None else np.iinfo(np.int64).max
                               for lv in arch.levels], dtype=np.float64)
        self.bounded = np.array([lv.size_words is not None for lv in arch.levels], dtype=bool)
        self.hw_keeps = np.array([[t in lv.keeps for t in range(N_TENSORS)] for lv in arch.levels], dtype=bool)
        # innermost loop above a level: the tensors it is relevant to (Rel); per row the sets of the
        # dimensions that can be that loop, or the minimal sets only when there are too many choices
        sets = sorted({tuple(bool(self.rel[t][d]) for t in range(N_TENSORS)) for d in DIMS if self.dims[d] > 1})
        sets = [a for a in sets if any(a)]
        minimal = [a for a in sets if not any(b != a and all(x <= y for x, y in zip(b, a)) for b in sets)]
        n_levels = max(0, min(self.levels - 1, MAX_FORCED_LEVELS))
        self.forced_per_row = FORCED_PER_ROW and len(sets) ** n_levels <= MAX_FORCED_COMBOS
        chosen = sets if self.forced_per_row else minimal
        self.forced_sets = [np.array(a) for a in chosen]
        self.set_dims = np.array([[self.dims[d] > 1 and tuple(bool(self.rel[t][d]) for t in range(N_TENSORS)) == a
                                   for d in DIMS] for a in chosen], dtype=bool).reshape(len(chosen), len(DIMS))
        self.forced_levels = list(range(1, 1 + n_levels)) if self.forced_sets else []
        self.tensor_words = np.array([np.prod(self.dims[RELEVANCE[t]]) for t in range(N_TENSORS)], dtype=np.float64)
        words = compulsory_words(layer)
        self.compulsory = np.array([words[t] / layer.G if COMPULSORY_TRAFFIC else 0.0
                                    for t in (Tensor.W, Tensor.I, Tensor.O)], dtype=np.float64)
        self._tables: dict[tuple, SplitTable] = {}

    def free_product(self, free: np.ndarray, subset: np.ndarray) -> float:
        sel = free & subset
        return float(np.prod(self.dims[sel])) if sel.any() else 1.0

    def split_table(self, free: np.ndarray) -> SplitTable | None:
        """The placements of the free dimensions on the fanouts (:class:`SplitTable`), built once per
        set; ``None`` when there are too many (:data:`search.mapper.splits.MAX_SPLIT_ROWS`)."""
        k = tuple(bool(f) for f in free)
        if k not in self._tables:
            self._tables[k] = SplitTable.of(self.space, np.asarray(free, dtype=bool), self.rel, self.window_pairs)
        return self._tables[k]

    def batch(self, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> _Batch:
        """The split-independent quantities of partial tilings ``[b, L, 7]`` (free dimensions hold 1)."""
        L = self.levels
        b = temporal.shape[0]
        s = (sx * sy).astype(np.float64)
        t = temporal.astype(np.float64)
        capx = self.fan_x[None] // sx.prod(axis=2)
        capy = self.fan_y[None] // sy.prod(axis=2)
        cap = (capx * capy).astype(np.float64)
        cap_below = np.concatenate([np.cumprod(cap[:, ::-1], axis=1)[:, ::-1], np.ones((b, 1))], axis=1)
        ext = np.ones((b, L + 1, len(DIMS)))                                  # extents, free dims at 1
        for l in range(L - 1, -1, -1):
            ext[:, l] = ext[:, l + 1] * t[:, l] * s[:, l]
        spans = self.spans(ext)                                               # [b, L+1, t, a]
        tile_lb = spans.prod(axis=-1)                                         # [b, L+1, t]
        ok = self.hw_keeps.T[None] & (tile_lb[:, :L].transpose(0, 2, 1) <= self.sizes[None, None])
        ok[:, :, 0] = True
        return _Batch(t, s, spans, ok, cap_below, capx[:, self.fan_levels], capy[:, self.fan_levels], ext, cap)

    def spans(self, ext: np.ndarray) -> np.ndarray:
        """Each tensor's tile span per axis, ``1 + sum_d proj (ext_d - 1)``, for extents ``ext[..., 7]``:
        ``[..., t, a]`` (a tile's words are their product; spans rise with every extent)."""
        t, a, d = self.proj.shape
        return 1 + ((ext - 1) @ self.proj.reshape(t * a, d).T.astype(float)).reshape(*ext.shape[:-1], t, a)

    def bounds(self, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray, assigned: np.ndarray,
               cutoff: np.ndarray | float | None = None, objective: Objective | None = None) -> Bounds:
        """Bounds for a batch of partial tilings ``[b, L, 7]`` (free dimensions hold 1); module docstring.

        With ``cutoff`` and ``objective``, rows whose bound without the splits already reaches
        ``cutoff`` keep that bound (valid, and they are cut either way) and only the others are
        bounded jointly over the splits.
        """
        free = ~np.asarray(assigned, dtype=bool)
        batch = self.batch(temporal, sx, sy)
        plain = relaxed_keys(free, self.dims, self.rel, self.window_pairs)
        energy, cycles, edp, costs = self._evaluate(batch, free, plain)
        g = self.layer.G
        cost = np.stack([c[0][:, 0] for c in costs], axis=1) * g                  # [b, t, p, c]
        cost_full = np.stack([c[1][:, 0] for c in costs], axis=1) * g if self.forced_levels else cost
        b = temporal.shape[0]
        if JOINT_SPLITS and free.any() and len(self.fan_levels):
            rows = np.arange(b)
            if cutoff is not None and objective is not None:
                plain_value = objective_of(objective, energy, cycles, self.arch.clock_GHz)
                if objective is Objective.EDP:
                    plain_value = objective_of(objective, edp, 1.0, self.arch.clock_GHz)
                rows = np.flatnonzero(plain_value < cutoff)
            table = self.split_table(free)
            if len(rows) and table is not None:
                sub = batch.take(rows)
                splits = table.for_rows(sub.capx, sub.capy)
                e2, c2, d2, _ = self._evaluate(sub, free, splits)
                energy[rows] = np.maximum(energy[rows], e2)
                cycles[rows] = np.maximum(cycles[rows], c2)
                edp[rows] = np.maximum(edp[rows], d2)
        forced = (cost_full, tuple(self.forced_levels), tuple(self.forced_sets))
        return Bounds(energy, cycles, cost, cheapest_chains(cost), float(self.layer.macs * self.arch.mac.energy_pJ),
                      *forced, edp_pJ_cycles=edp, forced_allowed=self._allowed_sets(batch.t, free))

    def _allowed_sets(self, t: np.ndarray, free: np.ndarray) -> np.ndarray | None:
        """``[b, level, set]``: whether the innermost active loop above each enumerated level can be
        over a dimension of that set (module docstring, "Innermost loop"); ``None``: every set."""
        if not (self.forced_per_row and self.forced_levels):
            return None
        b = t.shape[0]
        active = t > 1
        cand_free = free & (self.dims > 1)
        out = []
        for c in self.forced_levels:
            deep = np.where(active[:, :c].any(axis=2), np.arange(c)[None, :], -1).max(axis=1)
            cand = active[np.arange(b), np.maximum(deep, 0)] & (deep >= 0)[:, None] | cand_free[None, :]
            allowed = (cand[:, None, :] & self.set_dims[None]).any(axis=2)
            allowed[~allowed.any(axis=1)] = True
            out.append(allowed)
        return np.stack(out, axis=1)

    def _evaluate(self, batch: _Batch, free: np.ndarray, splits: Splits):
        """Energy, cycles and EDP (pJ x cycles) bounds ``[b]``, each the least over the splits each
        row may take, and per tensor its pair costs ``(cost, cost_full)``, ``[b, key, p, c]``, without ``G``."""
        g = self.layer.G
        costs, chains, words0 = [], [], []
        allowed = self._allowed_sets(batch.t, free)
        combos = list(itertools.product(range(len(self.forced_sets)), repeat=len(self.forced_levels)))
        variants = {tuple(bool(self.forced_sets[k][tt]) for k in combo) for combo in combos
                    for tt in range(N_TENSORS)} or {()}
        for tt in range(N_TENSORS):
            cost, cost_full, w0 = tensor_costs(self, tt, batch, free, splits.keys[tt])
            costs.append((cost, cost_full))
            per = {}
            for var in variants:
                columns = [c for c, forced in zip(self.forced_levels, var) if forced]
                per[var] = cheapest_chains(cost, cost_full, columns) * g       # [b, key]
            chains.append(per)
            words0.append(w0 * g)
        key = splits.key
        best = None
        b = batch.t.shape[0]
        for combo in combos:
            rows = _combo_rows(allowed, combo, b)
            if not rows.any():
                continue
            tot = sum(chains[tt][tuple(bool(self.forced_sets[k][tt]) for k in combo)][:, key[:, tt]]
                      for tt in range(N_TENSORS))
            tot = np.where(rows[:, None], tot, np.inf)
            best = tot if best is None else np.minimum(best, tot)
        energy = (float(self.layer.macs * self.arch.mac.energy_pJ) + best) * SLACK       # [b, J]
        cycles = self.split_cycles(batch, free, splits, words0)
        if splits.allowed is not None:
            energy = np.where(splits.allowed, energy, np.inf)
            cycles = np.where(splits.allowed, cycles, np.inf)
        return energy.min(axis=1), cycles.min(axis=1), (energy * cycles).min(axis=1), costs

    def split_cycles(self, batch: _Batch, free: np.ndarray, splits: Splits, words0: list) -> np.ndarray:
        """Cycles bound of each split, ``[b, J]`` (module docstring, "Cycles" and "Splits"):
        ``G compute`` with the split's free fanout ``Z``, and an outermost level with one instance
        at least its least words (``words0[t][b, key]``, with ``G``) over its bandwidth."""
        key = splits.key
        t_all = batch.t.prod(axis=(1, 2))
        free_all = self.free_product(free, np.ones(len(DIMS), dtype=bool))
        cycles = (t_all * free_all * self.layer.G)[:, None] / np.minimum(batch.cap_below[:, :1], splits.total[None])
        outer = self.arch.levels[0]
        if outer.instances == 1:
            if outer.read_bw_words is not None:
                reads0 = words0[Tensor.W][:, key[:, Tensor.W]] + words0[Tensor.I][:, key[:, Tensor.I]]
                cycles = np.maximum(cycles, reads0 / outer.read_bw_words)
            if outer.write_bw_words is not None:
                cycles = np.maximum(cycles, words0[Tensor.O][:, key[:, Tensor.O]] / outer.write_bw_words)
        return cycles * SLACK


__all__ = ["BoundModel", "Bounds", "RelaxedTerms", "objective_of", "SLACK", "JOINT_SPLITS", "COMPULSORY_TRAFFIC"]
