"""Loop-nest geometry in matrix form: tile extents, loop shifts, transfers and distinct tiles.

Notation, for one batch row (every function works on ``B`` rows at once):

* ``L`` storage levels, outermost ``l = 0``; the MACs are level ``L``.
* ``t_{l,d}`` temporal and ``s_{l,d}`` spatial factors of dimension ``d`` at level ``l``.
* The flattened temporal nest, outermost first, has ``M = 7L`` loops ``j``; loop ``j`` belongs
  to level ``m(j) = j // 7``, iterates dimension ``d_j`` with bound ``f_j = t_{m(j), d_j}``.
* ``e_{l,d} = prod_{m >= l} t_{m,d} s_{m,d}``: extent of the tile held at level ``l``.
* ``A[t, a, d]``: projection of dimension ``d`` onto axis ``a`` of tensor ``t``
  (:func:`formulation.axes.projection`); the tile of ``t`` at ``l`` spans
  ``E_{l,t,a} = 1 + sum_d A[t,a,d] (e_{l,d} - 1)`` along axis ``a`` and holds
  ``prod_a E_{l,t,a}`` words.

In log form every pure (non-window) quantity is a matrix product: ``log e = U @ log(t s)`` with
``U`` upper-triangular over levels, and ``log tile = RELEVANCE @ log e``. The window axes
(input width and height) add the halo terms, which is why extents are kept explicit here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from formulation.axes import N_AXES, N_DIMS, N_TENSORS
from formulation.model.encoding import MappingArrays


@dataclass(frozen=True)
class Nest:
    """Geometry shared by all tensors for one batch."""

    extents: np.ndarray      # e[b, l, d], l = 0..L (row L is all ones: one MAC)
    loop_dim: np.ndarray     # d_j[b, j]
    loop_bound: np.ndarray   # f_j[b, j]
    loop_step: np.ndarray    # step_j[b, j]: extent of d_j covered by one iteration of loop j
    instances: np.ndarray    # utilized instances of level l = prod_{m<l} prod_d s_{m,d}; [b, L+1]
    compute: np.ndarray      # prod_j f_j: temporal iterations, the compute cycles of one MAC; [b]


def build_nest(arrays: MappingArrays) -> Nest:
    """Flatten the per-level loops into one nest and compute extents and steps.

    ``step_j = e_{m(j)+1, d_j} * s_{m(j), d_j}``: everything inside loop ``j`` along ``d_j`` is
    the level below plus this level's spatial fanout (spatial loops sit innermost in a level,
    and each dimension has one temporal loop per level).
    """
    temporal, spatial = arrays.temporal, arrays.spatial
    b, levels, _ = temporal.shape
    fac = temporal * spatial
    extents = np.ones((b, levels + 1, N_DIMS), dtype=np.int64)
    for l in range(levels - 1, -1, -1):
        extents[:, l] = extents[:, l + 1] * fac[:, l]
    outer_first = arrays.order[:, :, ::-1]
    loop_dim = outer_first.reshape(b, levels * N_DIMS)
    rows = np.arange(b)[:, None]
    level_of = np.repeat(np.arange(levels), N_DIMS)[None, :]
    loop_bound = temporal[rows, level_of, loop_dim]
    loop_step = extents[rows, level_of + 1, loop_dim] * spatial[rows, level_of, loop_dim]
    fan = spatial.prod(axis=2)
    instances = np.ones((b, levels + 1), dtype=np.int64)
    instances[:, 1:] = np.cumprod(fan, axis=1)
    return Nest(extents, loop_dim, loop_bound, loop_step, instances, temporal.prod(axis=(1, 2)))


def axis_extents(nest: Nest, proj: np.ndarray) -> np.ndarray:
    """``E[b, l, t, a] = 1 + sum_d A[t,a,d] (e[b,l,d] - 1)``, the tile's span along each axis."""
    return 1 + np.einsum("tad,bld->blta", proj, nest.extents - 1)


def loop_shifts(nest: Nest, proj: np.ndarray) -> np.ndarray:
    """``sh[b, j, t, a] = A[t, a, d_j] * step_j``: how far one iteration of loop ``j`` moves each axis."""
    coeff = np.ascontiguousarray(np.moveaxis(proj, 2, 0))[nest.loop_dim]  # [b, j, t, a]
    return coeff * nest.loop_step[:, :, None, None]


def arrivals(nest: Nest, proj: np.ndarray, spans: np.ndarray, shifts: np.ndarray, level: int) -> np.ndarray:
    """Words that reach one instance of ``level`` over the run, per tensor: ``[b, t]``.

    Timeloop moves only the difference between a tile and the one the instance held before, with
    two details of its nest analysis (v3.0.3) that decide the count:

    * it runs iterations #0 and #1 of every loop and extrapolates #1 to the rest, so the tile
      before an outer step is the one at index 1 (not ``f-1``) of every inner loop;
    * it keeps the last translation of the tile and, when a new translation differs, drops the
      old tile and fetches the new one whole ("reset on stride change").

    Only loops with ``f_j > 1`` take part. With ``z`` the innermost of them above ``level`` and
    ``T_j = sh_j - sum_{i>j, f_i>1} sh_i`` the translation when loop ``j`` advances (inner loops
    go back from index 1 to 0), the tile before any step other than ``z``'s is always one step of
    ``z`` away, so

        delta_z = tile - O(T_z)
        delta_j = tile - O(T_j)   if T_j == T_z,   else tile    (j above z)
        arrivals = tile + sum_j (f_j - 1) (prod_{i<j} f_i) delta_j

    where ``O(T) = prod_a max(0, E_a - |T_a|)`` is the overlap of two tiles ``T`` apart. Loops over
    dimensions the tensor ignores translate nothing and cost nothing while nothing inside them
    moves (stationarity); a window sliding along P or R keeps its halo (``O > 0``).
    """
    above = N_DIMS * level
    tile = spans[:, level].prod(axis=-1)
    if above == 0:
        return tile
    f = nest.loop_bound[:, :above]
    active = f > 1
    sh = shifts[:, :above] * active[:, :, None, None]
    inner_sum = sh[:, ::-1].cumsum(axis=1)[:, ::-1] - sh  # sum over i > j of active shifts
    trans = sh - inner_sum
    cols = np.arange(above)[None, :]
    innermost = np.where(active, cols, -1).max(axis=1)  # z, or -1 without active loops
    rows = np.arange(f.shape[0])
    t_z = sh[rows, np.maximum(innermost, 0)]  # [b, t, a]
    same = (trans == t_z[:, None]).all(axis=-1)  # [b, j, t]
    overlap = np.clip(spans[:, level][:, None] - np.abs(trans), 0, None).prod(axis=-1)
    overlap = np.where(same, overlap, 0)
    before = np.cumprod(np.concatenate([np.ones_like(f[:, :1]), f[:, :-1]], axis=1), axis=1)
    events = (f - 1) * before
    return tile + np.einsum("bj,bjt->bt", events, tile[:, None, :] - overlap)


def union_lengths(shifts: np.ndarray, counts: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Length covered by intervals ``[o, o + span)`` at all offsets ``o = sum_k i_k shifts_k``, ``0 <= i_k < counts_k``.

    Rows are independent (``shifts``/``counts`` are ``[R, n]``, ``span`` is ``[R]``). With
    ``span = 1`` this counts distinct offsets. Loops are merged finest first: a pattern of span
    ``w`` covering ``c`` words, repeated ``f`` times every ``s``, covers ``f c`` words over
    ``(f-1) s + w`` when ``s >= w`` (disjoint copies) and ``(f-1) s + w`` when the pattern is
    one interval and ``s <= w``; rows that fit neither rule are enumerated exactly.
    """
    shifts = np.where(counts > 1, shifts, 0)
    counts = np.where(shifts > 0, counts, 1)
    used = (counts > 1).any(axis=0)  # loops that move the axis in some row
    shifts, counts = shifts[:, used], counts[:, used]
    if shifts.shape[1] <= 1:  # one loop: disjoint copies or one interval
        s = shifts[:, 0] if shifts.shape[1] else np.zeros(len(span), dtype=np.int64)
        f = counts[:, 0] if counts.shape[1] else np.ones(len(span), dtype=np.int64)
        span = span.astype(np.int64)
        return np.where(s >= span, f * span, (f - 1) * s + span)
    idx = np.argsort(shifts, axis=1, kind="stable")
    s_sorted = np.take_along_axis(shifts, idx, axis=1)
    f_sorted = np.take_along_axis(counts, idx, axis=1)
    width = span.astype(np.int64).copy()
    covered = width.copy()
    irregular = np.zeros(len(span), dtype=bool)
    for k in range(shifts.shape[1]):
        s, f = s_sorted[:, k], f_sorted[:, k]
        active = f > 1
        disjoint = active & (s >= width)
        solid = active & ~disjoint & (covered == width)
        irregular |= active & ~disjoint & ~solid
        new_width = np.where(active, (f - 1) * s + width, width)
        covered = np.where(disjoint, f * covered, np.where(solid, new_width, covered))
        width = new_width
    for r in np.flatnonzero(irregular):
        covered[r] = _enumerate_union(tuple(int(v) for v in shifts[r]), tuple(int(v) for v in counts[r]),
                                      int(span[r]))
    return covered


@lru_cache(maxsize=65536)
def _enumerate_union(shifts: tuple[int, ...], counts: tuple[int, ...], span: int) -> int:
    offsets = np.zeros(1, dtype=np.int64)
    for s, f in zip(shifts, counts):
        if f > 1 and s > 0:
            offsets = np.unique((offsets[:, None] + s * np.arange(f)[None, :]).ravel())
    gaps = np.diff(offsets)
    return int(span + np.minimum(gaps, span).sum())


def partition_sizes(nest: Nest, proj: np.ndarray, spans: np.ndarray, shifts: np.ndarray, level: int) -> np.ndarray:
    """Distinct words one instance of ``level`` holds over the run: ``[b, t]``.

    Per axis, the union of the tile's span moved by every loop above the level; the axes are
    independent, so the partition is the product. On an axis fed by one dimension the loops tile
    it exactly (``E * prod f_j`` over its loops); a window axis (input width or height) may leave
    gaps or overlaps and takes :func:`union_lengths`.
    """
    above = N_DIMS * level
    b = spans.shape[0]
    out = np.ones((b, N_TENSORS), dtype=np.int64)
    f = nest.loop_bound[:, :above]
    for t in range(N_TENSORS):
        for a in range(N_AXES):
            if np.count_nonzero(proj[t, a]) > 1:
                out[:, t] *= union_lengths(shifts[:, :above, t, a], f, spans[:, level, t, a])
            else:
                moves = proj[t, a][nest.loop_dim[:, :above]] != 0
                out[:, t] *= spans[:, level, t, a] * np.where(moves, f, 1).prod(axis=1)
    return out


def distinct_children(nest: Nest, proj: np.ndarray, arrays: MappingArrays, parent: int, child: int) -> np.ndarray:
    """Distinct tiles among the children one parent instance feeds through fanouts ``parent..child-1``: ``[b, t]``.

    The spatial loop of ``d`` at level ``m`` shifts axis ``a`` by ``A[t,a,d] e_{m+1,d}`` per
    child. Children at the same offset on every axis hold identical tiles and receive identical
    deltas, so they share one parent read (multicast); children at different offsets are served
    separately even when their windows overlap. Dimensions a tensor ignores give full multicast;
    a spatial P together with a spatial R can map several children to one input column. Through
    several fanouts (the levels in between bypass the tensor) the count is the product of each
    fanout's own distinct offsets: as in timeloop-model v3.0.3, a spatial Q at one fanout and a
    spatial S at the next do not share the input rows they have in common
    (tests/data/timeloop_specs/eyeriss-like-rs-dummy).
    """
    b = arrays.temporal.shape[0]
    levels = range(parent, child)
    counts = np.concatenate([arrays.spatial[:, m] for m in levels], axis=1)  # [b, n*7]
    steps = np.concatenate([nest.extents[:, m + 1] for m in levels], axis=1)
    dims = np.tile(np.arange(N_DIMS), len(levels))
    out = np.ones((b, N_TENSORS), dtype=np.int64)
    for t in range(N_TENSORS):
        for a in range(N_AXES):
            coeff = proj[t, a, dims][None, :]
            if not coeff.any():
                continue
            fed = np.where(coeff > 0, counts, 1)
            if np.count_nonzero(proj[t, a]) > 1:  # a window axis: P and R may land on one column
                for k in range(len(levels)):  # per fanout: no sharing across fanouts (see docstring)
                    part = slice(k * N_DIMS, (k + 1) * N_DIMS)
                    out[:, t] *= union_lengths((coeff * steps)[:, part], fed[:, part], np.ones(b, dtype=np.int64))
            else:
                out[:, t] *= fed.prod(axis=1)
    return out


def reduction_factor(arrays: MappingArrays, parent: int, child: int, reduction_mask: np.ndarray) -> np.ndarray:
    """``prod`` of spatial factors of reduction dimensions (C, R, S) on fanouts ``parent..child-1``: ``[b]``."""
    sp = arrays.spatial[:, parent:child]
    return np.where(reduction_mask[None, None, :], sp, 1).prod(axis=(1, 2))
