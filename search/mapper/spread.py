"""Seeds that use the whole PE array: spatial factors spread to the largest product the mesh allows.

Random sampling and one-prime moves rarely reach the spatial assignments that fill a large mesh
(on a 64x48 array, ResNet-18's ``layer1_3x3`` fills every PE only with R on X beside K, and C on
Y). :func:`full_spreads` lists, for an architecture with one fanout level, spatial assignments
``(x_d, y_d)`` (``x_d y_d`` divides ``D_d``, a dimension on one axis only, ``prod x <= FX``, ``prod
y <= FY``) whose PE product is the largest there is, and :func:`transplant` puts one into an
existing mapping, re-dealing its temporal factors so that every dimension's product is still
``D_d``. These are only candidates for the mapper's first incumbent (:mod:`search.mapper.seed`):
every one is checked for legality and scored by the exact model, so nothing here needs to be
optimal or even legal.
"""

from __future__ import annotations

import math

import numpy as np

from formulation.axes import N_DIMS
from formulation.factors import divisors
from formulation.model.encoding import MappingArrays
from formulation.specs.types import Architecture, Layer

#: At most this many partial assignments are visited while listing spreads (large meshes).
MAX_VISITED = 200_000


def fanout_level(arch: Architecture) -> int | None:
    """The one storage level with a fanout > 1 below it, or None (no fanout, or several)."""
    levels = [l for l in range(len(arch.levels)) if math.prod(arch.fanout(l)) > 1]
    return levels[0] if len(levels) == 1 else None


def _options(dim: int, fan_x: int, fan_y: int) -> list[tuple[int, int]]:
    out = [(1, 1)]
    for k in divisors(dim):
        if k > 1:
            if k <= fan_x:
                out.append((k, 1))
            if k <= fan_y:
                out.append((1, k))
    return out


def full_spreads(layer: Layer, arch: Architecture, rng: np.random.Generator,
                 count: int) -> tuple[int | None, list[tuple[np.ndarray, np.ndarray]]]:
    """The fanout level and up to ``count`` spatial assignments ``(x[7], y[7])`` of the largest PE
    product found (a random choice among them, drawn with ``rng``; the listing stops after
    :data:`MAX_VISITED` partial assignments)."""
    level = fanout_level(arch)
    if level is None or count <= 0:
        return level, []
    fan_x, fan_y = arch.fanout(level)
    opts = [_options(int(layer.dims[d]), fan_x, fan_y) for d in range(N_DIMS)]
    best, found, visited = 0, [], 0
    stack = [(0, 1, 1, ())]
    while stack and visited < MAX_VISITED:
        d, px, py, chosen = stack.pop()
        visited += 1
        if d == N_DIMS:
            if px * py > best:
                best, found = px * py, [chosen]
            elif px * py == best:
                found.append(chosen)
            continue
        for x, y in opts[d]:
            if px * x <= fan_x and py * y <= fan_y:
                stack.append((d + 1, px * x, py * y, chosen + ((x, y),)))
    if not found:
        return level, []
    picks = rng.choice(len(found), size=min(count, len(found)), replace=False)
    out = []
    for i in sorted(int(p) for p in picks):
        pairs = found[i]
        out.append((np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64)))
    return level, out


def transplant(layer: Layer, arrays: MappingArrays, level: int, x: np.ndarray, y: np.ndarray) -> MappingArrays:
    """``arrays`` (a batch of one) with the spatial factors at ``level`` set to ``x``/``y`` and its
    temporal factors re-dealt: per dimension, innermost level first, each level keeps the largest
    divisor of its old factor that still divides what is left, and the outermost level takes the
    rest, so ``prod_l t_{l,d} x_{l,d} y_{l,d} = D_d``. Loop orders and keeps are kept."""
    sx, sy = arrays.spatial_x[0].copy(), arrays.spatial_y[0].copy()
    sx[level], sy[level] = x, y
    t_old = arrays.temporal[0]
    t = np.ones_like(t_old)
    levels = t_old.shape[0]
    for d in range(N_DIMS):
        left = int(layer.dims[d]) // int(np.prod(sx[:, d]) * np.prod(sy[:, d]))
        for l in range(levels - 1, 0, -1):
            t[l, d] = math.gcd(int(t_old[l, d]), left)
            left //= int(t[l, d])
        t[0, d] = left
    return MappingArrays(t[None], sx[None], sy[None], arrays.order[:1].copy(), arrays.keep[:1].copy())


__all__ = ["full_spreads", "transplant", "fanout_level"]
