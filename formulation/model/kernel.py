"""The compiled exact model: one Numba kernel per mapping, looped over a batch.

:func:`evaluate_rows` computes, for every mapping of a batch, exactly the arrays of
:class:`~formulation.model.exact.BatchEvaluation` that the NumPy reference
(:func:`formulation.model.exact.reference_batch`) computes. The semantics are stated once, in the
reference's docstrings: access counts in :func:`formulation.model.exact.access_counts`, energy and
cycles in :func:`formulation.model.exact.reference_chunk`, loop-nest geometry in
:mod:`formulation.model.nest`, link transfers in :mod:`formulation.model.links`. The per-row
building blocks live in :mod:`formulation.model.kernel_nest` and :mod:`formulation.model.kernel_links`.

All counts are ``int64`` and exact; :func:`formulation.model.compiled.count_bound` refuses a layer
whose counts could exceed the range before the kernel runs. Energy and the bandwidth arithmetic are
IEEE doubles in the reference's order of operations, so they are bit-identical too.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from formulation.axes import N_AXES, N_DIMS, N_TENSORS, Tensor
from formulation.model.kernel_links import link_row
from formulation.model.kernel_nest import (
    active_loops,
    arrivals,
    axis_spans,
    build_nest,
    reduction_factor,
    union_length,
)

OUT = int(Tensor.O)
LVL_BLOCK, LVL_SIZE, LVL_FAN_X, LVL_FAN_Y = 0, 1, 2, 3            # columns of ``lvl_i``
LVL_READ_E, LVL_FILL_E, LVL_UPDATE_E, LVL_READ_BW, LVL_WRITE_BW = 0, 1, 2, 3, 4  # of ``lvl_f`` (bw < 0: none)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _counts(temporal, sx, sy, order, keep, sorder, lay, fan_xy, macs, s):
    """Reads, fills, updates (totals over instances, one group, masked by ``keep``) of one mapping,
    as :func:`formulation.model.exact.access_counts` defines them; ``s`` is the scratch tuple.

    Partitions and distinct children are computed inline rather than in helper functions: a Numba
    call with a dozen array arguments costs about 0.2 us (measured), more than the work itself.

    Returns ``compute`` (one group), or -1 when a link rescale would overflow (``link_row``).
    """
    (ext, ldim, lbound, lstep, inst, spans, act, trans, buf_s, buf_f, tmp_s, tmp_f, arrive, part, child,
     reads, fills, updates, reads0, shape, off, size, pmove, pwords, lin, flagged, buf, tprod) = s
    ax_of, coef, window, win_dims, adims, an = lay
    levels = temporal.shape[0]
    compute = build_nest(temporal, sx, sy, order, levels, ext, ldim, lbound, lstep, inst)
    axis_spans(coef, adims, an, ext, levels, spans)
    tprod[:] = 1
    for l in range(levels):
        n_act = active_loops(lbound, N_DIMS * l, act)
        for t in range(N_TENSORS):
            if not keep[l, t]:
                continue
            arrive[l, t] = arrivals(ax_of, coef, spans, ldim, lbound, lstep, l, t, act, n_act)
            held = 1  # partition: formulation.model.nest.partition_sizes (tprod: temporal factors above l)
            for a in range(N_AXES):
                p = spans[l, t, a]
                if window[t, a]:
                    n = 0
                    for k in range(n_act):
                        j = act[k]
                        d = ldim[j]
                        if ax_of[t, d] == a:
                            buf_s[n] = coef[t, d] * lstep[j]
                            buf_f[n] = lbound[j]
                            n += 1
                    p = union_length(buf_s, buf_f, n, p, tmp_s, tmp_f)
                else:
                    p *= tprod[adims[t, a, 0]]
                held *= p
            part[l, t] = held
        for d in range(N_DIMS):
            tprod[d] *= temporal[l, d]
    for t in range(N_TENSORS):
        arrive[levels, t] = compute
        child[levels - 1, t] = levels
        for l in range(levels - 2, -1, -1):
            child[l, t] = l + 1 if keep[l + 1, t] else child[l + 1, t]
    for l in range(levels):
        for t in range(N_TENSORS):
            reads[l, t] = 0
            fills[l, t] = 0
            updates[l, t] = 0
            if not keep[l, t]:
                continue
            c = child[l, t]
            if t == OUT:
                red = reduction_factor(sx, sy, l, c)
                updates[l, t] = macs // red if c == levels else inst[c] * arrive[c, t] // red
                fills[l, t] = inst[l] * (arrive[l, t] - part[l, t])
                reads[l, t] = updates[l, t] - inst[l] * part[l, t]
            else:
                fan = 1  # distinct children: formulation.model.nest.distinct_children
                for a in range(N_AXES):
                    if window[t, a]:
                        for m in range(l, c):  # fanout by fanout: no sharing across fanouts
                            n = 0
                            for i in range(an[t, a]):
                                d = adims[t, a, i]
                                buf_s[n] = coef[t, d] * ext[m + 1, d]
                                buf_f[n] = sx[m, d] * sy[m, d]
                                n += 1
                            fan *= union_length(buf_s, buf_f, n, 1, tmp_s, tmp_f)
                    else:
                        d = adims[t, a, 0]
                        for m in range(l, c):
                            fan *= sx[m, d] * sy[m, d]
                reads[l, t] = inst[l] * fan * arrive[c, t]
                fills[l, t] = inst[l] * arrive[l, t] if l > 0 else 0
            reads0[l, t] = reads[l, t]
    candidate = False  # the row filter of link_row, here so that most rows skip its costly call
    for m in range(levels):
        n_fan = 1
        for d in range(N_DIMS):
            n_fan *= sx[m, d] * sy[m, d]
        z = -1
        for j in range(N_DIMS * (m + 1)):
            if lbound[j] > 1:
                z = j
        if n_fan > 1 and z >= 0:
            for t in range(N_TENSORS):
                if m == levels - 1 or (keep[m + 1, t] and win_dims[t, ldim[z]]):
                    candidate = True
    if not candidate:
        return compute
    ok = link_row(ax_of, coef, adims, an, win_dims, sx, sy, sorder, keep, ext, spans, ldim, lbound, lstep, inst, levels, fan_xy,
                  compute, reads0, reads, fills, updates, act, trans, shape, off, size, pmove, pwords, lin, flagged,
                  buf)
    return compute if ok else -1


def _scratch(levels, max_children):
    """Every per-mapping work array, allocated once per batch (the order of the unpacking in
    :func:`_counts`): nest geometry, the active loops and their translations, union buffers,
    arrivals, partitions, child levels, counts, link-transfer pairs and children (``max_children``).
    All ``int64`` ones are views of one allocation (allocations, not the work, dominate small batches)."""
    loops = N_DIMS * levels
    lt = levels * N_TENSORS
    la = loops * N_AXES
    pairs = (2 * loops + 1) * N_AXES
    sizes = ((levels + 1) * N_DIMS, loops, loops, loops, levels + 1, (levels + 1) * N_TENSORS * N_AXES, loops,
             la, loops, loops, loops, loops, (levels + 1) * N_TENSORS, lt, lt, lt, lt, lt, lt, la, la, loops, pairs,
             2 * loops + 1 + N_AXES, max_children, max_children, N_DIMS)
    total = 0
    for n in sizes:
        total += n
    flat = np.empty(total, np.int64)
    o = 0
    views = []
    for n in sizes:
        views.append(flat[o:o + n])
        o += n
    reads0 = views[18]
    reads0[:] = 0
    tprod = views[26]
    tprod[:] = 1
    return (views[0].reshape((levels + 1, N_DIMS)), views[1], views[2], views[3], views[4],
            views[5].reshape((levels + 1, N_TENSORS, N_AXES)), views[6], views[7].reshape((loops, N_AXES)),
            views[8], views[9], views[10], views[11], views[12].reshape((levels + 1, N_TENSORS)),
            views[13].reshape((levels, N_TENSORS)), views[14].reshape((levels, N_TENSORS)),
            views[15].reshape((levels, N_TENSORS)), views[16].reshape((levels, N_TENSORS)),
            views[17].reshape((levels, N_TENSORS)), reads0.reshape((levels, N_TENSORS)),
            views[19].reshape((loops, N_AXES)), views[20].reshape((loops, N_AXES)), views[21],
            views[22].reshape((2 * loops + 1, N_AXES)), views[23], views[24], np.zeros(max_children, np.bool_),
            views[25], tprod)


_scratch_jit = njit(cache=True, nogil=True, error_model="numpy")(_scratch)


@njit(cache=True, nogil=True, error_model="numpy")
def evaluate_rows(temporal, sx, sy, order, keep, sorder, ax_of, coef, window, win_dims, adims, an, lvl_i, lvl_f,
                  groups, macs, max_children):
    """Evaluate every mapping of a batch; returns ``(i3, i2, i1, fits, energy_pJ_by_tensor, throttling,
    n_overflow)``: the ``int64`` fields of a ``BatchEvaluation`` stacked by shape (``i3``: reads,
    fills, updates, utilized_capacity, partition_size; ``i2``: utilized_instances, capacity_used,
    level_cycles; ``i1``: compute_cycles, cycles, 1 where a link rescale overflowed) and the number
    of overflowed mappings.

    Energy and cycles follow :func:`formulation.model.exact.reference_chunk` step by step. ``lay`` is
    :func:`formulation.model.compiled.layer_constants` (unpacked), ``lvl_i``/``lvl_f`` :func:`formulation.model.compiled.arch_constants`.
    """
    b_count, levels, _ = temporal.shape
    lay = (ax_of, coef, window, win_dims, adims, an)  # separate arguments: a tuple argument is slow to dispatch
    s = _scratch_jit(levels, max_children)
    reads, fills, updates = s[15], s[16], s[17]
    spans, inst = s[5], s[4]
    fan_xy = lvl_i[:, LVL_FAN_X:LVL_FAN_Y + 1]
    i3 = np.empty((5, b_count, levels, N_TENSORS), np.int64)  # few output arrays: each costs to return
    i2 = np.empty((3, b_count, levels), np.int64)
    i1 = np.empty((3, b_count), np.int64)
    o_reads, o_fills, o_updates, o_tiles, o_part = i3[0], i3[1], i3[2], i3[3], i3[4]
    o_inst, o_used, o_lcycles = i2[0], i2[1], i2[2]
    o_compute, o_cycles, o_overflow = i1[0], i1[1], i1[2]
    o_fits = np.empty(b_count, np.bool_)
    o_energy = np.empty((b_count, levels, N_TENSORS), np.float64)
    o_throttle = np.empty((b_count, levels), np.float64)
    n_overflow = 0
    for b in range(b_count):
        o_overflow[b] = 0
        compute = _counts(temporal[b], sx[b], sy[b], order[b], keep[b], sorder[b], lay, fan_xy, macs, s)
        if compute < 0:
            o_overflow[b] = 1
            n_overflow += 1
            compute = 1
        compute *= groups
        computef = float(compute)
        fits = True
        worst = compute
        for l in range(levels):
            n = inst[l]
            o_inst[b, l] = n
            blk = lvl_i[l, LVL_BLOCK]
            used = 0
            rd = 0.0
            wr = 0.0
            for t in range(N_TENSORS):
                k = keep[b, l, t]
                r = reads[l, t] * groups
                f = fills[l, t] * groups
                u = updates[l, t] * groups
                o_reads[b, l, t] = r
                o_fills[b, l, t] = f
                o_updates[b, l, t] = u
                tile = 0
                if k:
                    tile = 1
                    for a in range(N_AXES):
                        tile *= spans[l, t, a]
                o_tiles[b, l, t] = tile
                used += tile
                o_part[b, l, t] = s[13][l, t] * groups if k else 0
                if n > 1:  # integer divisions are the costliest instructions here: skipped when by 1
                    r_i, f_i, u_i = r // n, f // n, u // n
                else:
                    r_i, f_i, u_i = r, f, u
                if blk > 1:
                    r_b, f_b, u_b = -(-r_i // blk), -(-f_i // blk), -(-u_i // blk)
                else:
                    r_b, f_b, u_b = r_i, f_i, u_i
                o_energy[b, l, t] = n * (r_b * lvl_f[l, LVL_READ_E] + f_b * lvl_f[l, LVL_FILL_E]
                                         + u_b * lvl_f[l, LVL_UPDATE_E])
                rd = rd + float(r_i) / computef
                wr = wr + float(f_i + u_i) / computef
            o_used[b, l] = used
            if used > lvl_i[l, LVL_SIZE]:
                fits = False
            slowdown = 1.0
            bw = lvl_f[l, LVL_READ_BW]
            if bw >= 0 and rd > bw:
                slowdown = min(slowdown, bw / rd)
            bw = lvl_f[l, LVL_WRITE_BW]
            if bw >= 0 and wr > bw:
                slowdown = min(slowdown, bw / wr)
            o_throttle[b, l] = slowdown
            cyc = np.int64(math.ceil(computef / slowdown))
            o_lcycles[b, l] = cyc
            worst = max(worst, cyc)
        o_fits[b] = fits
        o_compute[b] = compute
        o_cycles[b] = worst
    return i3, i2, i1, o_fits, o_energy, o_throttle, n_overflow
