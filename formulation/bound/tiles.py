"""Whole tiles: what a PE's register-file tile must take in at every step, from the layer's divisors.

Notation as in :mod:`formulation.bound.reuse`; this holds for templates with a single per-PE level
(the PE's storage is one level, whose tile of each kept tensor is fixed by that level's loop
factors ``f_d``, each a divisor of ``D_d``; no fanout below it). A PE runs ``MACs_pe / b``
iterations of the loops above its level, ``b = prod_d f_d`` MACs each. From one iteration to the
next some loops above change index, the set ``A`` of their dimensions (the loop that advances and
the inner ones that restart); a dimension can only be in ``A`` if ``f_d < D_d`` (else no loop
above iterates it). The tile of every kept tensor then moves, and what it takes in (fills,
or drains for outputs; :mod:`formulation.bound.reuse` counts them as ``io_t``, inputs as new
fills) is at least, with tile extents ``E_W = stride (f_P - 1) + dilation (f_R - 1) + 1`` and
``E_H`` likewise:

* weights: the whole tile ``f_K f_C f_R f_S`` if ``A`` meets ``{K, C, R, S}`` (a weight index
  moves by a non-zero multiple of its tile extent, so old and new tiles are disjoint);
* outputs: the whole tile ``f_N f_K f_P f_Q`` if ``A`` meets ``{N, K, P, Q}`` (drains);
* inputs: the whole tile ``f_N f_C E_W E_H`` if ``A`` meets ``{N, C}``; otherwise if exactly one
  of ``P``, ``R`` is in ``A`` the tile moves along the width by a non-zero multiple of ``stride
  f_P`` (``dilation f_R``), so at least ``min(stride f_P, E_W)`` (``min(dilation f_R, E_W)``) new
  columns of ``f_N f_C E_H`` words arrive (with both, the moves may cancel: nothing is counted);
  the same for the height with ``Q``, ``S``; a move along both axes brings at least the larger
  slab. Timeloop's reset on a stride change only re-fetches more.

With ``G > 1`` groups, a step to the next group replaces every tile. So a step costs at least
``min_A sum_t c_t new_t(A)``; a PE's first iteration fills its weight and input tiles and its last
drains its output tile, together at least ``sum_t c_t tile_t``, which is at least any step's
cost (``new(A) <= tile``) and is all a PE with a single iteration pays (``b = MACs_pe``). Hence
``sum_t c_t io_t >= MACs min_tiles min(sum_t c_t tile_t, min_A sum_t c_t new_t(A)) / b`` over the
tiles whose kept parts fit the PE's capacity (Timeloop's capacity check). The minimum over a finite set
of vectors ``v = new(A) / b`` of ``c . v`` with ``c >= 0`` is attained on its non-dominated
vectors, which are kept (:func:`step_vectors`).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from formulation.axes import Dim
from formulation.factors import divisors
from formulation.specs.types import Layer

#: Tile spaces larger than this (after the capacity filter) are not used (the bound stays valid without them).
MAX_TILES = 4000

_W_DIMS = (Dim.K, Dim.C, Dim.R, Dim.S)
_O_DIMS = (Dim.N, Dim.K, Dim.P, Dim.Q)


def _non_dominated(v: np.ndarray) -> np.ndarray:
    """The rows of ``v`` that no other row is at most in every column (each kept once): repeatedly
    keep the row of least sum left and drop every row it dominates (its copies included)."""
    v = v[np.argsort(v.sum(axis=1), kind="stable")]
    kept = []
    while len(v):
        best = v[0]
        kept.append(best)
        v = v[1:][~(v[1:] >= best).all(axis=1)]
    return np.array(kept).reshape(-1, 3)


def _slab(a: tuple, output_dim: Dim, filter_dim: Dim, by_output: np.ndarray, by_filter: np.ndarray):
    """The new input words along one window axis when the loops of ``a`` move: a slab if exactly one of
    the axis' two dimensions moves, else 0 (none moves, or both and they may cancel)."""
    if (output_dim in a) == (filter_dim in a):
        return 0.0
    return by_output if output_dim in a else by_filter


@lru_cache(maxsize=1024)
def step_vectors(layer: Layer, kept: tuple[bool, bool, bool], capacity_words: int) -> np.ndarray | None:
    """The non-dominated ``new(A) / b`` vectors ``[n, 3]`` (words per MAC of weights, inputs, outputs)
    over every tile of the kept tensors that fits ``capacity_words`` and every set ``A`` (module
    docstring); ``None`` when more than :data:`MAX_TILES` tiles fit (no bound is taken then)."""
    d = layer.dims
    grids = np.meshgrid(*[np.array(divisors(d[dim]), dtype=np.int64) for dim in Dim], indexing="ij")
    f = np.stack([g.ravel() for g in grids], axis=1)
    e_w = layer.Wstride * (f[:, Dim.P] - 1) + layer.Wdilation * (f[:, Dim.R] - 1) + 1
    e_h = layer.Hstride * (f[:, Dim.Q] - 1) + layer.Hdilation * (f[:, Dim.S] - 1) + 1
    tile_w = f[:, Dim.K] * f[:, Dim.C] * f[:, Dim.R] * f[:, Dim.S]
    tile_i = f[:, Dim.N] * f[:, Dim.C] * e_w * e_h
    tile_o = f[:, Dim.N] * f[:, Dim.K] * f[:, Dim.P] * f[:, Dim.Q]
    used = np.where(kept[0], tile_w, 0) + np.where(kept[1], tile_i, 0) + np.where(kept[2], tile_o, 0)
    fit = used <= capacity_words
    if fit.sum() > MAX_TILES:
        return None
    if not fit.any():
        return np.zeros((0, 3))
    f, e_w, e_h = f[fit], e_w[fit], e_h[fit]
    tiles = np.stack([tile_w[fit], tile_i[fit], tile_o[fit]], axis=1).astype(np.float64)
    b = f.prod(axis=1).astype(np.float64)
    movable = f < np.array(d)
    cols_p = np.minimum(layer.Wstride * f[:, Dim.P], e_w) * tiles[:, 1] / e_w
    cols_r = np.minimum(layer.Wdilation * f[:, Dim.R], e_w) * tiles[:, 1] / e_w
    rows_q = np.minimum(layer.Hstride * f[:, Dim.Q], e_h) * tiles[:, 1] / e_h
    rows_s = np.minimum(layer.Hdilation * f[:, Dim.S], e_h) * tiles[:, 1] / e_h
    mask = np.array(kept, dtype=np.float64)
    out = []
    for size in range(1, len(Dim) + 1):
        for a in itertools.combinations(Dim, size):
            ok = movable[:, list(a)].all(axis=1)
            if not ok.any():
                continue
            new_w = tiles[:, 0] if any(x in _W_DIMS for x in a) else np.zeros(len(b))
            new_o = tiles[:, 2] if any(x in _O_DIMS for x in a) else np.zeros(len(b))
            if Dim.N in a or Dim.C in a:
                new_i = tiles[:, 1]
            else:
                width = _slab(a, Dim.P, Dim.R, cols_p, cols_r)
                height = _slab(a, Dim.Q, Dim.S, rows_q, rows_s)
                new_i = np.maximum(width, height) * np.ones(len(b))
            v = np.stack([new_w, new_i, new_o], axis=1) * mask / b[:, None]
            out.append(v[ok])
    out.append(tiles * mask / b[:, None])  # a PE with one iteration (or the next group) takes whole tiles
    return _non_dominated(np.concatenate(out))


def step_floor(costs: np.ndarray, vectors: np.ndarray | None, macs: float) -> np.ndarray:
    """``MACs min_v c . v`` for each row of ``costs[n, 3]`` (0 without vectors): a lower bound on
    ``sum_t c_t io_t`` (module docstring)."""
    if vectors is None or not len(vectors):
        return np.zeros(costs.shape[0])
    out = costs @ vectors[0]
    for v in vectors[1:]:  # few vectors, many rows: one product per vector
        np.minimum(out, costs @ v, out=out)
    return macs * out


def tile_floor(costs: np.ndarray, kept: np.ndarray, compulsory: np.ndarray, vectors_of, macs: float) -> np.ndarray:
    """A lower bound on ``sum_t c_t io_t`` per row from whole tiles: :func:`step_floor` with the row's
    kept tensors (``vectors_of(kept_pattern)``, :func:`step_vectors`), also with the costs capped at
    each kept cost ``c' = min(c, cap)`` plus the remainder ``sum_t (c_t - c'_t) compulsory_t``
    (:func:`formulation.bound.segments.segment_floor` gives the argument)."""
    out = np.zeros(costs.shape[0])
    full = np.where(kept, np.maximum(costs, 0.0), 0.0)
    code = kept.astype(np.int64) @ np.array([1, 2, 4])
    for value in np.unique(code):
        pattern = np.array([bool(value & 1), bool(value & 2), bool(value & 4)])
        rows = np.flatnonzero(code == value)
        vectors = vectors_of(tuple(bool(x) for x in pattern))
        if vectors is None or not len(vectors) or pattern.sum() < 1:
            continue
        c = full[rows]
        rest = np.where(kept[rows], compulsory[rows], 0.0)
        best = step_floor(c, vectors, macs)
        for j in np.flatnonzero(pattern):
            capped = np.minimum(c, c[:, [j]])
            np.maximum(best, step_floor(capped, vectors, macs) + ((c - capped) * rest) @ np.ones(3), out=best)
        out[rows] = best
    return out
