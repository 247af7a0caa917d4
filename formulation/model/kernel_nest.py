"""Compiled (Numba) loop-nest geometry of one mapping: the per-row form of :mod:`formulation.model.nest`.

Every function here computes, for one mapping, exactly what the function of the same name in
:mod:`formulation.model.nest` computes for a batch (partitions and distinct children are computed
inline in :func:`formulation.model.kernel._counts` from :func:`union_length`); the semantics and the formulas are stated
there (and tested equal, ``tests/test_kernel.py``). Only the data layout differs: one mapping at a
time, loops with ``f = 1`` skipped, scratch arrays passed in so that no call allocates.

Counts are ``int64``. :func:`formulation.model.compiled.count_bound` bounds every count before the
kernel runs, so none of the products here can wrap (see its docstring).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from formulation.axes import N_AXES, N_DIMS, N_TENSORS, Dim

DIM_C, DIM_R, DIM_S = int(Dim.C), int(Dim.R), int(Dim.S)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def build_nest(temporal, sx, sy, order, levels, ext, ldim, lbound, lstep, inst):
    """Extents ``e[l, d]``, the flattened loops (outermost first) and the utilized instances.

    See :func:`formulation.model.nest.build_nest`. Writes ``ext[0..L]``, ``ldim/lbound/lstep[0..7L)``,
    ``inst[0..L]`` and returns ``compute = prod`` of all temporal factors.
    """
    for d in range(N_DIMS):
        ext[levels, d] = 1
    for l in range(levels - 1, -1, -1):
        for d in range(N_DIMS):
            ext[l, d] = ext[l + 1, d] * temporal[l, d] * sx[l, d] * sy[l, d]
    compute = 1
    inst[0] = 1
    for l in range(levels):
        fan = 1
        for k in range(N_DIMS):
            j = l * N_DIMS + k
            d = order[l, N_DIMS - 1 - k]
            ldim[j] = d
            lbound[j] = temporal[l, d]
            lstep[j] = ext[l + 1, d] * sx[l, d] * sy[l, d]
            compute *= temporal[l, d]
            fan *= sx[l, k] * sy[l, k]
        inst[l + 1] = inst[l] * fan
    return compute


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def axis_spans(coef, adims, an, ext, levels, spans):
    """``spans[l, t, a] = 1 + sum_d A[t,a,d] (e[l,d] - 1)`` (:func:`formulation.model.nest.axis_extents`);
    ``adims[t, a, :an[t, a]]`` are the dimensions with ``A[t, a, d] != 0`` and ``coef[t, d]`` their coefficients."""
    for l in range(levels + 1):
        for t in range(N_TENSORS):
            for a in range(N_AXES):
                s = 1
                for i in range(an[t, a]):
                    d = adims[t, a, i]
                    s += coef[t, d] * (ext[l, d] - 1)
                spans[l, t, a] = s


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def active_loops(lbound, above, act):
    """Indices ``j < above`` of the loops with ``f_j > 1``, outermost first, into ``act``; returns their number."""
    n = 0
    for j in range(above):
        if lbound[j] > 1:
            act[n] = j
            n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def fill_translations(ax_of, coef, ldim, lstep, t, act, n_act, trans):
    """``trans[k] = T_j = sh_j - sum_{i > j active} sh_i`` for the active loops ``j = act[k]`` (tensor ``t``)."""
    a0 = a1 = a2 = a3 = 0
    for k in range(n_act - 1, -1, -1):
        j = act[k]
        d = ldim[j]
        a = ax_of[t, d]
        sh = coef[t, d] * lstep[j] if a >= 0 else 0
        trans[k, 0] = (sh if a == 0 else 0) - a0
        trans[k, 1] = (sh if a == 1 else 0) - a1
        trans[k, 2] = (sh if a == 2 else 0) - a2
        trans[k, 3] = (sh if a == 3 else 0) - a3
        if a == 0:
            a0 += sh
        elif a == 1:
            a1 += sh
        elif a == 2:
            a2 += sh
        elif a == 3:
            a3 += sh


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def arrivals(ax_of, coef, spans, ldim, lbound, lstep, level, t, act, n_act):
    """Words reaching one instance of ``level`` for tensor ``t``: :func:`formulation.model.nest.arrivals`.

    ``act[:n_act]`` are the active loops above the level. Dimension ``d`` moves tensor ``t`` along the one axis ``ax_of[t, d]`` (-1: it does
    not index it). One pass from the innermost active loop ``z`` outwards keeps the inner shifts
    ``sum_{i>j} sh_i`` in four scalars and sums ``sum_j (f_j - 1) (prod_{i<j} f_i) (tile - O_j)``
    in Horner form, ``acc <- (f_j - 1) (tile - O_j) + f_j acc``.
    """
    e0 = spans[level, t, 0]
    e1 = spans[level, t, 1]
    e2 = spans[level, t, 2]
    e3 = spans[level, t, 3]
    tile = e0 * e1 * e2 * e3
    if n_act == 0:
        return tile
    jz = act[n_act - 1]
    az = ax_of[t, ldim[jz]]
    shz = coef[t, ldim[jz]] * lstep[jz] if az >= 0 else 0
    z0 = shz if az == 0 else 0
    z1 = shz if az == 1 else 0
    z2 = shz if az == 2 else 0
    z3 = shz if az == 3 else 0
    i0 = i1 = i2 = i3 = 0  # active shifts inside the current loop
    acc = 0
    for k in range(n_act - 1, -1, -1):
        j = act[k]
        d = ldim[j]
        a = ax_of[t, d]
        sh = coef[t, d] * lstep[j] if a >= 0 else 0
        t0 = (sh if a == 0 else 0) - i0
        t1 = (sh if a == 1 else 0) - i1
        t2 = (sh if a == 2 else 0) - i2
        t3 = (sh if a == 3 else 0) - i3
        overlap = 0
        if t0 == z0 and t1 == z1 and t2 == z2 and t3 == z3:
            overlap = max(e0 - abs(t0), 0) * max(e1 - abs(t1), 0) * max(e2 - abs(t2), 0) * max(e3 - abs(t3), 0)
        f = lbound[j]
        acc = (f - 1) * (tile - overlap) + f * acc
        if a == 0:
            i0 += sh
        elif a == 1:
            i1 += sh
        elif a == 2:
            i2 += sh
        elif a == 3:
            i3 += sh
    return tile + acc


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def union_length(shifts, counts, n, span, tmp_s, tmp_f):
    """Length covered by ``[o, o + span)`` at all offsets ``o = sum_k i_k shifts_k`` (one row of
    :func:`formulation.model.nest.union_lengths`): finest loop first, exact enumeration when the
    two closed-form rules do not apply."""
    m = 0
    for k in range(n):
        if shifts[k] > 0 and counts[k] > 1:
            s, f = shifts[k], counts[k]
            i = m  # insertion sort by shift, stable
            while i > 0 and tmp_s[i - 1] > s:
                tmp_s[i] = tmp_s[i - 1]
                tmp_f[i] = tmp_f[i - 1]
                i -= 1
            tmp_s[i] = s
            tmp_f[i] = f
            m += 1
    width = span
    covered = span
    for k in range(m):
        s, f = tmp_s[k], tmp_f[k]
        new_width = (f - 1) * s + width
        if s >= width:
            covered = f * covered
        elif covered == width:
            covered = new_width
        else:
            return _enumerate_union(tmp_s, tmp_f, m, span)
        width = new_width
    return covered


@njit(cache=True, nogil=True, error_model="numpy")
def _enumerate_union(shifts, counts, m, span):
    total = 1
    for k in range(m):
        total *= counts[k]
    offsets = np.zeros(total, dtype=np.int64)
    size = 1
    for k in range(m):
        s, f = shifts[k], counts[k]
        for i in range(1, f):
            for q in range(size):
                offsets[i * size + q] = offsets[q] + i * s
        size *= f
    offsets.sort()
    covered = span
    for q in range(1, total):
        gap = offsets[q] - offsets[q - 1]
        covered += gap if gap < span else span
    return covered


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def reduction_factor(sx, sy, parent, child):
    """Product of the spatial C, R, S factors on fanouts ``parent..child-1`` (:func:`formulation.model.nest.reduction_factor`)."""
    r = 1
    for m in range(parent, child):
        r *= (sx[m, DIM_C] * sy[m, DIM_C] * sx[m, DIM_R] * sy[m, DIM_R]
              * sx[m, DIM_S] * sy[m, DIM_S])
    return r
