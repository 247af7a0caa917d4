"""A windowed input's reads at a parent, at least once per sweep of the children: the sweep bound.

For the inputs of a layer with a sliding window the chain bounds of :mod:`search.mapper.bounds`
count the tile's own window spans (``W_c``) and the compulsory traffic, but not what the loops
above a keeper sweep: a loop over a window dimension, or over K, above the keeper, re-reads the
rows the window covers. :func:`sweep_reads` bounds the parent's reads by that.

**Claim.** Let ``p`` be a level keeping the inputs, ``c`` the next one below it, ``m`` a level with
``p <= m < c``. Split the loops above ``c`` into the *outer block* (every temporal loop at the
levels ``< m``; ``N_out`` iterations) and the *inner block* (the levels ``m .. c-1``). Fix one
instance of ``p`` and one iteration of the outer block; its ``g`` children (the instances of
``c`` under it) visit, during the inner block, tiles whose union contains every input element
some MAC of that iteration reads: with ``E_d`` the extent of dimension ``d`` in the inner block
and the spatial factors at the levels ``p .. m-1`` (``ext_m`` times those factors), that is at
least ``U = E_N E_C used(E_P, E_R) used(E_Q, E_S)`` elements, ``used`` counting the distinct
coordinates ``stride * p + dilation * r`` (exact when the stride or the dilation is 1:
``min((P-1) s + R, P R)`` for dilation 1, symmetrically for stride 1; ``max(P, R)`` otherwise).
An element reaches a child only from ``p`` (one read, possibly multicast to several children)
or from a sibling by a link, which must already hold it; so every element of the union that no
child holds when the iteration starts is read from ``p`` at least once during it. The children
hold one tile each then (the model's buffers hold the current tile): at most ``H = min(g
|tile_c|, span of the box of one step's tiles)`` elements, the box having the extents of ``c``
times the spatial factors at the levels ``p .. c-1``. They hold nothing of the iteration's
elements when it is the first, or when its outer N/C index differs from its predecessor's
(those tiles lie in another, disjoint block of channels or images); every one of the ``F``
distinct outer N/C index values (``F`` the product of the outer block's N and C factors) has a
first iteration, so at least ``min(F, N_out)`` iterations read all of ``U``. Hence ``reads_p >=
n_p (F U + (N_out - F) max(0, U - H))``, ``n_p`` the instances of ``p``; every ``m`` gives a
valid bound and the largest is used. This holds for any loop order, spatial order, bypass of
the levels between and links.

For partial tilings (free dimensions hold 1): ``N_out``, ``n_p`` and ``U`` only grow with the free
factors (lower bounds), while ``g |tile_c|`` is taken at an upper bound: the free spatial factors
at the levels ``p .. c-1`` at most the fanout left there, the free extents in the tile at most
``D_d``.
"""

from __future__ import annotations

import numpy as np

from formulation.axes import Dim, Tensor


def used_lb(extent: np.ndarray, filt: np.ndarray, stride: int, dilation: int) -> np.ndarray:
    """A lower bound on ``|{stride * p + dilation * r : p < extent, r < filt}|`` (module docstring)."""
    if dilation == 1:
        return np.minimum((extent - 1) * stride + filt, extent * filt)
    if stride == 1:
        return np.minimum((filt - 1) * dilation + extent, extent * filt)
    return np.maximum(extent, filt)


def sweep_reads(layer, proj: np.ndarray, t: np.ndarray, s: np.ndarray, ext: np.ndarray, cap: np.ndarray,
                free: np.ndarray, dims: np.ndarray) -> np.ndarray:
    """``[b, p, c]``: the claim's bound on the inputs read at ``p`` to fill the next keeper ``c``
    (``c < L``; 0 where it gives nothing), for tilings ``t``, ``s = x y`` ``[b, L, 7]`` with extents
    ``ext`` ``[b, L+1, 7]`` (free dimensions at 1) and fanout left ``cap`` ``[b, L]``."""
    b, L, _ = t.shape
    out = np.zeros((b, L + 1, L + 1))
    ext_ub = np.where(free[None, None, :], dims[None, None, :].astype(np.float64), ext)
    tile_ub = (1 + np.einsum("ad,bld->bla", proj[Tensor.I], ext_ub - 1)).prod(axis=2)          # [b, L+1]
    t_all = t.prod(axis=2)                                                                        # [b, L]
    s_all = s.prod(axis=2)
    for c in range(1, L):
        for p in range(c):
            n_p = s_all[:, :p].prod(axis=1)
            g_ub = (s_all[:, p:c] * cap[:, p:c]).prod(axis=1)
            group = ext_ub[:, c] * s[:, p:c].prod(axis=1)                                        # [b, 7]
            held = np.minimum(g_ub * tile_ub[:, c],
                              (1 + np.einsum("ad,bd->ba", proj[Tensor.I], group - 1)).prod(axis=1))
            best = np.zeros(b)
            for m in range(p, c):
                n_out = t_all[:, :m].prod(axis=1)
                fresh = np.minimum(n_out, t[:, :m][:, :, [Dim.N, Dim.C]].prod(axis=(1, 2)))
                e = ext[:, m] * s[:, p:m].prod(axis=1)                                            # [b, 7]
                u = (e[:, Dim.N] * e[:, Dim.C]
                     * used_lb(e[:, Dim.P], e[:, Dim.R], layer.Wstride, layer.Wdilation)
                     * used_lb(e[:, Dim.Q], e[:, Dim.S], layer.Hstride, layer.Hdilation))
                words = fresh * u + (n_out - fresh) * np.maximum(0.0, u - held)
                best = np.maximum(best, n_p * words)
            out[:, p, c] = best
    return out


__all__ = ["sweep_reads", "used_lb"]
