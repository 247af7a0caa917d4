"""Compiled (Numba) link transfers of one mapping: the per-row form of :mod:`formulation.model.links`.

The semantics (Timeloop's neighbour forwarding below a spatial fanout, the closed-form pairs of
consecutive step types, the book-keeping, and the fanout-into-MACs rule) are stated in the
docstring of :mod:`formulation.model.links`; this module computes the same numbers for one
mapping and is tested equal to it (``tests/test_kernel.py``). Per row it needs no filters beyond
the cheap ones of the reference: candidate pairs are built for the active loops above the fanout,
and the children are enumerated only when a pair survives the spread test.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from formulation.axes import N_AXES, N_DIMS, N_TENSORS, Tensor
from formulation.model.kernel_nest import fill_translations

OUT = int(Tensor.O)
LIMIT = 2 ** 62


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _distinct_sorted(values, rank, n, skip):
    """Number of distinct ``values[c]`` over ``c < n`` with ``skip[c]`` false; ``rank[:n]`` orders
    ``values[:n]`` ascending, so equal values are consecutive in it and one pass counts them."""
    out = 0
    last = 0
    for i in range(n):
        c = rank[i]
        if skip[c]:
            continue
        v = values[c]
        if out == 0 or v != last:
            out += 1
            last = v
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _storage_pairs(trans, n_act, act, lbound, spans, m, t, shape, off, size, pmove, pwords):
    """Candidate pairs ``(first, z)``, ``(z, k)``, ``(k, z)`` of a fanout onto a storage level
    (``_candidate_pairs`` in :mod:`formulation.model.links`); returns the pair count and the words
    reaching one child over the run."""
    z = n_act - 1
    for k in range(n_act):
        follows = True
        for a in range(N_AXES):
            if trans[k, a] != trans[z, a]:
                follows = False
        follows = follows or k == z
        n_moving = 0
        big = False
        for a in range(N_AXES):
            if trans[k, a] != 0:
                n_moving += 1
            if abs(trans[k, a]) >= spans[m + 1, t, a]:
                big = True
        slab = follows and n_moving == 1 and not big
        empty = follows and n_moving == 0
        sz = 1
        for a in range(N_AXES):
            e = spans[m + 1, t, a]
            moving = trans[k, a] != 0
            shape[k, a] = 0 if empty else (abs(trans[k, a]) if slab and moving else e)
            off[k, a] = e - trans[k, a] if slab and moving and trans[k, a] > 0 else 0
            sz *= shape[k, a]
        size[k] = sz
    tile = 1
    whole = True
    for a in range(N_AXES):
        tile *= spans[m + 1, t, a]
        if shape[z, a] != spans[m + 1, t, a]:
            whole = False
    fz1 = lbound[act[z]] - 1
    n = 0
    arrive = tile
    before = 1
    for k in range(n_act):
        events = (lbound[act[k]] - 1) * before
        before *= lbound[act[k]]
        arrive += events * size[k]
        if size[z] == 0:
            continue
        if k == z:
            if whole:
                for a in range(N_AXES):
                    pmove[n, a] = trans[z, a] + off[z, a]
                pwords[n] = size[z] * fz1
                n += 1
            continue
        same = True
        for a in range(N_AXES):
            if shape[k, a] != shape[z, a]:
                same = False
        if not same:
            continue
        for a in range(N_AXES):
            pmove[n, a] = trans[k, a] + off[k, a] - off[z, a]
            pmove[n + 1, a] = trans[z, a] + off[z, a] - off[k, a]
        pwords[n] = size[z] * events
        pwords[n + 1] = size[z] * events * fz1
        n += 2
    return n, arrive


@njit(cache=True, nogil=True, error_model="numpy")
def _mac_pairs(trans, n_act, act, lbound, pmove, pwords):
    """Candidate steps of a fanout onto the MACs: a MAC holds nothing, so its "delta" is its
    one-point operand at every step, and a step of type ``k`` moves it by ``T_k`` with total
    weight ``W_k`` (module docstring of :mod:`formulation.model.links`)."""
    before = 1
    for k in range(n_act):
        for a in range(N_AXES):
            pmove[k, a] = trans[k, a]
        pwords[k] = (lbound[act[k]] - 1) * before
        before *= lbound[act[k]]
    return n_act


@njit(cache=True, nogil=True, error_model="numpy")
def _link_words(ax_of, coef, sx, sy, sorder, ext, m, t, fan_x, fan_y, spread, pmove, pwords, n_pairs, lin, flagged, buf):
    """``(R, L, U)`` per instance of ``m`` for the candidate pairs (``_link_words`` of the reference);
    the pairs passed all have ``|move| <= spread`` and words."""
    mul = np.empty(N_AXES, dtype=np.int64)
    mul[0] = 1
    for a in range(1, N_AXES):
        mul[a] = mul[a - 1] * (2 * spread[a - 1] + 1)
    want = np.empty(n_pairs, dtype=np.int64)
    words = np.zeros(n_pairs, dtype=np.int64)
    n_want = 0
    for p in range(n_pairs):  # pairs with the same move are evaluated once
        v = 0
        for a in range(N_AXES):
            v += pmove[p, a] * mul[a]
        found = False
        for q in range(n_want):
            if want[q] == v:
                words[q] += pwords[p]
                found = True
        if not found:
            want[n_want] = v
            words[n_want] = pwords[p]
            n_want += 1
    cnt = np.empty(2 * N_DIMS, dtype=np.int64)
    step = np.empty(2 * N_DIMS, dtype=np.int64)
    nd = 0
    px = 1
    py = 1
    for axis in range(2):
        for k in range(N_DIMS):
            d = sorder[m, k]
            c = sx[m, d] if axis == 0 else sy[m, d]
            if c > 1:
                cnt[nd] = c
                a = ax_of[t, d]
                step[nd] = coef[t, d] * ext[m + 1, d] * mul[a] if a >= 0 else 0
                nd += 1
                if axis == 0:
                    px *= c
                else:
                    py *= c
    n = px * py
    for c in range(n):
        rem = c
        v = 0
        for k in range(nd):
            v += (rem % cnt[k]) * step[k]
            rem //= cnt[k]
        lin[c] = v
        flagged[c] = False
    h = max(fan_x, px)
    vv = max(fan_y, py)
    rank = np.argsort(lin[:n])
    u_all = _distinct_sorted(lin, rank, n, flagged)
    big_r = 0
    big_l = 0
    for q in range(n_want):
        w = want[q]
        n_flag = 0
        for c in range(n):
            gh = c % h
            gv = c // h
            f = ((gh < h - 1 and c + 1 < n and lin[c + 1] - lin[c] == w)
                 or (gh > 0 and lin[c - 1] - lin[c] == w)
                 or (gv < vv - 1 and c + h < n and lin[c + h] - lin[c] == w)
                 or (gv > 0 and lin[c - h] - lin[c] == w))
            flagged[c] = f
            if f:
                n_flag += 1
        rest = _distinct_sorted(lin, rank, n, flagged)
        if rest < u_all:
            big_r += (u_all - rest) * words[q]
            big_l += n_flag * words[q]
    for c in range(n):
        flagged[c] = False
    return big_r, big_l, u_all


@njit(cache=True, nogil=True, error_model="numpy")
def link_row(ax_of, coef, adims, an, win_dims, sx, sy, sorder, keep, ext, spans, ldim, lbound, lstep, inst, levels, fan_xy,
             compute, reads0, reads, fills, updates, act, trans, shape, off, size, pmove, pwords, lin, flagged, buf):
    """Apply the link-transfer corrections of one mapping to ``reads``/``fills``/``updates`` (totals, unmasked).

    ``reads0`` are the reads without links (used when a fanout's level bypasses the tensor). See
    :func:`formulation.model.links.link_transfers` for the rule and the book-keeping. Returns False
    when the bypass rescale's product ``per_a (P - R)`` would not fit ``int64`` (nothing is changed then).
    """
    spread = pwords[pwords.shape[0] - N_AXES:]  # the last entries of pwords are free (at most 2 n_act + 1 pairs)
    for m in range(levels):
        n_fan = 1
        for d in range(N_DIMS):
            n_fan *= sx[m, d] * sy[m, d]
        if n_fan <= 1:
            continue
        n_act = 0
        for j in range(N_DIMS * (m + 1)):
            if lbound[j] > 1:
                act[n_act] = j
                n_act += 1
        if n_act == 0:
            continue
        mac = m == levels - 1
        z_dim = ldim[act[n_act - 1]]
        for t in range(N_TENSORS):
            if not mac and not (keep[m + 1, t] and win_dims[t, z_dim]):
                continue
            for a in range(N_AXES):
                s = 0
                for i in range(an[t, a]):
                    d = adims[t, a, i]
                    s += coef[t, d] * (sx[m, d] * sy[m, d] - 1) * ext[m + 1, d]
                spread[a] = s
            fill_translations(ax_of, coef, ldim, lstep, t, act, n_act, trans)
            if mac:
                n_pairs = _mac_pairs(trans, n_act, act, lbound, pmove, pwords)
                arrive = compute
            else:
                n_pairs, arrive = _storage_pairs(trans, n_act, act, lbound, spans, m, t, shape, off, size,
                                                 pmove, pwords)
            kept = 0
            for p in range(n_pairs):  # only moves within the children's spread and with words can link
                ok = pwords[p] > 0
                for a in range(N_AXES):
                    if abs(pmove[p, a]) > spread[a]:
                        ok = False
                if ok:
                    for a in range(N_AXES):
                        pmove[kept, a] = pmove[p, a]
                    pwords[kept] = pwords[p]
                    kept += 1
            if kept == 0:
                continue
            big_r, big_l, big_u = _link_words(ax_of, coef, sx, sy, sorder, ext, m, t, fan_xy[m, 0], fan_xy[m, 1], spread,
                                              pmove, pwords, kept, lin, flagged, buf)
            if big_l <= 0:
                continue
            n_m = inst[m]
            if not mac:
                n_c = inst[m + 1]
                reads[m + 1, t] += n_c * ((2 * big_l + n_c) // (2 * n_c))
                fills[m + 1, t] -= n_c * (-(-big_l * (n_m - 1) // n_c))
            if keep[m, t]:
                reads[m, t] -= n_m * big_r
                if mac and t == OUT:
                    updates[m, t] -= n_m * big_r
                continue
            a_lv = 0
            for l in range(m):
                if keep[l, t]:
                    a_lv = l
            n_a = inst[a_lv]
            per_a = (updates[a_lv, t] if t == OUT else reads0[a_lv, t]) // n_a
            parent = big_u * arrive
            if per_a > 0 and parent - big_r > LIMIT // (2 * per_a):
                return False
            new = (2 * per_a * (parent - big_r) + parent) // (2 * parent)
            reads[a_lv, t] -= n_a * (per_a - new)
            if t == OUT:
                updates[a_lv, t] -= n_a * (per_a - new)
    return True
