"""Loop orders that give different counts: one representative per equivalence class, with proofs.

The model (:mod:`formulation.model.nest`, :mod:`formulation.model.links`) reads a level's
permutation only through the flattened nest. Two safe rules pick, per level, one permutation out
of each class of permutations that give identical counts for *every* tiling above and below:

**Rule 1, inactive loops** (``"inactive-loops"``). A loop with bound ``f = 1`` takes no part:
:func:`~formulation.model.nest.arrivals` masks it (``active = f > 1``: zero shift, zero events,
never ``z``), ``partition_sizes``/``union_lengths`` drop loops with count 1, and the link analysis
uses active loops only (``_candidate_pairs``, the ``z`` of :func:`~formulation.model.links.link_transfers`).
The prefix products ``prod_{i<j} f_i`` are unchanged by moving a factor 1. Hence only the relative
order of the active loops of a level matters.

**Rule 2, reuse classes** (``"equivalent-orders"``). Every dimension is irrelevant to exactly one
tensor (N, P, Q to Weights; K to Inputs; C, R, S to Outputs), see :data:`~formulation.axes.RELEVANCE`.
For a tensor whose every axis is moved by one dimension only (Weights and Outputs always; Inputs
when :func:`~search.mapper.space.windowed_axes` is false on both axes) the arrivals at a level
``l`` are exactly ``tile * prod_{j <= j*} f_j`` with ``j*`` the innermost active loop above ``l``
relevant to the tensor. Proof: a loop ``j`` over a relevant dimension moves its axis by
``T_j = step_j - sum`` of the inner active steps of the same dimension; with the steps of one
dimension at least halving level by level, ``T_j >= x_k >= E`` (the innermost such step is at
least the tile extent), so the overlap ``O(T_j)`` is 0 and the delta is the whole tile; a loop over
an irrelevant dimension with an active relevant loop inside it translates by minus that loop's
shift, again at least the extent, so its delta is the whole tile too; loops inside ``j*`` are all
irrelevant with ``T = 0 = T_z``: delta 0. So the counts depend on a level's order only through the
set of active loops *before* (inside) its first relevant loop, innermost first -- for each
tensor. For Inputs with a sliding window the same argument holds for the loops over dimensions
that move a non-window axis (N, C, and P/R or Q/S when that axis is not windowed): every loop at
or outside the innermost of them moves the whole tile, and arrivals are
``prod_{j <= j*} f_j * a_sub`` where ``a_sub`` is the arrivals of the sub-nest inside ``j*``,
which depends on that sub-nest's exact sequence. The link analysis only links pairs whose
moves stay within the fanout's spread, which excludes every loop at or outside ``j*``
(:mod:`formulation.model.links`, "Which rows can link"), and weighs pairs by event counts whose
outer factor is the order-free product ``prod_{j <= j*} f_j``. So a level's order matters through
the key ``(Weights prefix set, Outputs prefix set, Inputs prefix *sequence* -- or set when the
input has no window)``. Across levels the nest above a storage level ``l`` is the concatenation of
the levels above it; a tensor's ``j*`` lies in the deepest level with a relevant active loop, whose
key fixes everything inside ``j*``; the deeper levels have no relevant active loop, so their key is
their whole active sequence (or set). Equal keys at every level give equal counts.

**Rule 3, the last level** (counted with ``"equivalent-orders"``). The loops of the last storage
level ``L - 1`` are above no storage level: arrivals and partitions at level ``l`` read the loops
of the levels ``< l`` only (:func:`~formulation.model.nest.arrivals`,
:func:`~formulation.model.nest.partition_sizes`), the MACs' arrivals are the compute
``prod_j f_j`` (order-free), and the link analysis at fanout ``m`` reads the loops of the levels
``0 .. m`` only and runs only where that fanout is used (``spatial[:, m].prod() > 1``). So when the
last level has no fanout into the MACs (``FX_{L-1} FY_{L-1} = 1``, as in ``simple`` and
``eyeriss-like``), its permutation changes no count, and one order (the first of Rule 2's classes)
represents them all (:meth:`search.mapper.leaves.LeafExpander.expand_tiling`).

Links at a fanout into the MACs (:mod:`formulation.model.links`, "Fanout into the MACs") move a
one-point operand by ``T_k`` on a step of loop ``k`` with weight ``W_k``. A loop at or outside a
tensor's ``j*`` moves a single-dimension axis by at least the fanout's span, beyond every
difference of child offsets, so it never links; the loops inside ``j*`` either do not move the
point (``T_k = 0``, one candidate move whose total weight ``sum W_k = prod_all f - prod_{j <= j*} f``
depends on the sets only) or, for a windowed input, move it along the window sequence that the
key fixes. So the keys above also fix those links.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from formulation.axes import DIMS, N_DIMS, RELEVANCE, Dim, Tensor


def _prefix(seq: tuple[int, ...], stop: frozenset[int]) -> tuple[int, ...]:
    out = []
    for d in seq:
        if d in stop:
            break
        out.append(d)
    return tuple(out)


def non_window_dims_of_inputs(windowed: tuple[bool, bool]) -> frozenset[int]:
    """Dimensions that move the input along an axis no other dimension moves (see Rule 2)."""
    out = {int(Dim.N), int(Dim.C)}
    if not windowed[0]:
        out |= {int(Dim.P), int(Dim.R)}
    if not windowed[1]:
        out |= {int(Dim.Q), int(Dim.S)}
    return frozenset(out)


def order_key(seq: tuple[int, ...], windowed: tuple[bool, bool]) -> tuple:
    """The Rule-2 key of an innermost-first sequence of active loops (module docstring)."""
    rel_w = frozenset(int(d) for d in DIMS if RELEVANCE[Tensor.W, d])
    rel_o = frozenset(int(d) for d in DIMS if RELEVANCE[Tensor.O, d])
    key_w = frozenset(_prefix(seq, rel_w))
    key_o = frozenset(_prefix(seq, rel_o))
    if any(windowed):
        key_i: tuple | frozenset = _prefix(seq, non_window_dims_of_inputs(windowed))
    else:
        key_i = frozenset(_prefix(seq, frozenset(int(d) for d in DIMS if RELEVANCE[Tensor.I, d])))
    return key_w, key_o, key_i


@lru_cache(maxsize=4096)
def level_orders(active: tuple[int, ...], windowed: tuple[bool, bool], rule2: bool = True) -> np.ndarray:
    """Representative permutations (innermost first, all seven dimensions) for a level whose active
    dimensions are ``active``: ``[k, 7]``.

    Rule 1 always (inactive dimensions follow, outermost, in :class:`Dim` order); Rule 2 when
    ``rule2``. The first permutation (lexicographic) of every class represents it.
    """
    rest = tuple(int(d) for d in DIMS if int(d) not in active)
    seen: dict = {}
    for perm in itertools.permutations(sorted(active)):
        key = order_key(perm, windowed) if rule2 else perm
        if key not in seen:
            seen[key] = perm + rest
    return np.array(list(seen.values()), dtype=np.int64).reshape(-1, N_DIMS)


def spatial_orders(x_dims: tuple[int, ...], y_dims: tuple[int, ...], all_orders: bool) -> list[tuple[int, ...]]:
    """Spatial orders of one level (innermost first: X dimensions, then Y, then the rest).

    Counts depend on the spatial order only through link transfers (``encoding`` docstring), and
    links need an input axis moved by two dimensions of bound > 1 (:mod:`formulation.model.links`,
    "Which rows can link") or a fanout into the MACs: without either (``all_orders`` false,
    ``"equivalent-spatial-orders"``) one order represents all ``n_x! n_y!``.
    """
    used = set(x_dims) | set(y_dims)
    rest = tuple(int(d) for d in DIMS if int(d) not in used)
    if not all_orders:
        return [tuple(x_dims) + tuple(y_dims) + rest]
    return [px + py + rest for px in itertools.permutations(x_dims) for py in itertools.permutations(y_dims)]


__all__ = ["level_orders", "order_key", "spatial_orders", "non_window_dims_of_inputs"]
