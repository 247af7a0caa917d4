"""The segment bound's numerics: the least ``sum_t c_t io_t`` of any mapping (argument: :mod:`formulation.bound.reuse`).

Split from :mod:`formulation.bound.reuse` to keep that module small.
"""

from __future__ import annotations

import numpy as np

#: Bisection steps for the best segment cost ``B`` (any ``B`` is valid; this only sharpens it).
BISECTION_STEPS = 16


def _best_segment_bound(k: np.ndarray, d: np.ndarray, pes: float, power: float) -> np.ndarray:
    """``max_B  k B (B + d)^-power - pes B`` over ``B >= 0`` (0 if the maximum is at ``B = 0``).

    The derivative ``k (B + d)^-(power+1) (d - (power - 1) B) - pes`` falls in ``B`` on
    ``[0, d / (power - 1)]`` and is negative beyond, so its root is found by bisection there.
    """
    out = np.zeros(np.shape(d))
    live = (k > 0) & (d > 0)  # no per-word cost at all: nothing to bound
    k, d = k[live], d[live]
    lo = np.zeros_like(d)
    hi = d / (power - 1.0)

    def inverse_power(x: np.ndarray, p: float) -> np.ndarray:  # x ** -p for p in {1.5, 2, 2.5, 3}, without pow
        whole = x if p < 2 else x * x if p < 3 else x * x * x
        return 1.0 / (whole * np.sqrt(x)) if p % 1 else 1.0 / whole

    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        slope = k * inverse_power(mid + d, power + 1.0) * (d - (power - 1.0) * mid) - pes
        up = slope > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    out[live] = np.maximum(k * lo * inverse_power(lo + d, power) - pes * lo, 0.0)
    return out


def segment_floor(costs: np.ndarray, kept: np.ndarray, capacity_words, macs: float, pes: float,
                  rho: float, compulsory: np.ndarray | None = None) -> np.ndarray:
    """A lower bound on ``sum_t c_t io_t`` over all PEs (the segment argument of :mod:`formulation.bound.reuse`).

    ``costs[n, 3]`` are the per-word costs ``c_W, c_I, c_O`` of ``n`` candidates, ``kept[n, 3]``
    which tensors each keeps per PE (the others stream and are not counted); ``pes`` the most PEs
    that can work, ``rho = min(R S, P Q)``. Rows keeping fewer than two tensors get 0. The AM-GM
    step prices the free capacity at the largest cost, so the bound is also taken with the costs
    capped (``c' = min(c, cap)``) at the second largest and at the least kept one, and the best of
    the three is returned. With ``compulsory[n, 3]`` (the least ``io_t`` of each row) a capped
    variant adds what the cap left out: ``sum_t c_t io_t = sum_t c'_t io_t + sum_t (c_t - c'_t)
    io_t >= segment(c') + sum_t (c_t - c'_t) compulsory_t`` since ``c - c' >= 0``.
    """
    out = np.zeros(costs.shape[0])
    full = np.where(kept, np.maximum(costs, 0.0), 0.0)
    s = np.broadcast_to(np.asarray(capacity_words, dtype=np.float64), costs.shape[:1])
    ranked = np.sort(np.where(kept, full, np.inf), axis=1)
    for cap in range(3):  # the costs as they are, then capped at the second largest and at the least kept cost
        limit = np.where(np.isfinite(ranked[:, 2 - cap]), ranked[:, 2 - cap], ranked[:, 0]) if cap else np.inf
        c = np.minimum(full, np.reshape(limit, (-1, 1)) if cap else np.inf)
        value = np.zeros(costs.shape[0])
        end_o = c[:, 2] * s
        rows = np.flatnonzero(kept.all(axis=1))
        if len(rows):
            cr = c[rows]
            d = (s[rows] + 1.0) * cr.max(axis=1) + end_o[rows]
            k = macs * np.sqrt(27.0 * cr[:, 0] * cr[:, 1] * cr[:, 2] / rho)
            value[rows] = np.maximum(value[rows], _best_segment_bound(k, d, pes, 1.5))
        for a, b in ((0, 1), (0, 2), (1, 2)):
            rows = np.flatnonzero(kept[:, a] & kept[:, b])
            if not len(rows):
                continue
            d = (s[rows] + 1.0) * np.maximum(c[rows, a], c[rows, b]) + (end_o[rows] if b == 2 else 0.0)
            k = 4.0 * macs * c[rows, a] * c[rows, b]
            value[rows] = np.maximum(value[rows], _best_segment_bound(k, d, pes, 2.0))
        if cap and compulsory is not None:
            value = value + ((full - c) * np.where(kept, compulsory, 0.0)) @ np.ones(3)
        out = np.maximum(out, value)
    return out
