"""From the continuous relaxation to legal integers: hardware on its legal grid, divisor tilings.

Tiling factors must divide each loop bound exactly, so a dimension's prime factors are dealt
out to the slots it may use (temporal at every level, spatial X/Y at the array fanout). Primes go
largest first to the slot with the largest remaining log deficit ``target - assigned`` that can
still take them (spatial slots share the mesh side). :func:`repair` then makes any mapping legal
for a given architecture: spatial factors beyond the fanout move to the same level's temporal
loop, and a level whose tiles overflow pushes primes to the next outer level, choosing each time
the move that frees the most words, until everything fits (DRAM is unbounded, so this ends).
"""

from __future__ import annotations

import math

import numpy as np

from formulation.axes import DIMS, N_DIMS
from formulation.model.encoding import MappingArrays
from formulation.relaxed.problem import LayerStructure, RelaxedProblem
from formulation.specs.types import Architecture, Layer, SpecError
from formulation.specs.template import ArchTemplate, Hardware
from formulation.model.validation import capacity_used
from search.tiling import SMOOTH_PRIMES, layer_primes, prime_factors, smooth_numbers
from search.design import Design

LEGAL_SIZES = "powers of two"


def nearest_power_of_two(value: float, lo: int, hi: int) -> int:
    """The power of two nearest to ``value`` in log terms, clipped into [lo, hi] (lo, hi themselves allowed)."""
    p = 2 ** round(math.log2(max(value, 1.0)))
    return int(min(max(p, lo), hi))


def nearest_smooth(value: float, lo: int, hi: int, primes: tuple[int, ...] = SMOOTH_PRIMES) -> int:
    """The integer in [lo, hi] nearest to ``value`` in log terms whose prime factors are all in ``primes``.

    CNN loop bounds are products of 2, 3 and 7 (224 = 2^5 7, 3x3 filters), so a mesh side made of
    the same primes can be filled exactly; a side like 45 leaves PEs idle on most layers.
    """
    candidates = smooth_numbers(lo, hi, primes) or [lo]
    return min(candidates, key=lambda n: (abs(math.log(n) - math.log(max(value, 1.0))), n))


def round_hardware(problem: RelaxedProblem, x: np.ndarray) -> Hardware:
    """Mesh sides to the nearest 2-3-7-smooth integer, buffer sizes to the nearest power of two, within the template."""
    h = problem.hardware(x)
    t = problem.template
    mx = nearest_smooth(h["mesh_x"], *t.mesh_x_range)
    my = nearest_smooth(h["mesh_y"], *t.mesh_y_range)
    sizes = tuple((name, nearest_power_of_two(h[name], lo, hi)) for name, lo, hi in t.size_ranges)
    return Hardware(mx, my, sizes)


def _single(temporal, sx, sy, order, keep) -> MappingArrays:
    return MappingArrays(temporal[None].copy(), sx[None].copy(), sy[None].copy(), order[None].copy(), keep[None].copy())


def round_layer(layer: Layer, arch: Architecture, structure: LayerStructure, fanout_level: int,
                xt: np.ndarray, xs: np.ndarray) -> MappingArrays:
    """Deal each dimension's primes to slots nearest the log targets ``xt[l,d]``/``xs[l,d]``, then :func:`repair`."""
    levels = len(arch.levels)
    temporal = np.ones((levels, N_DIMS), dtype=np.int64)
    sx = np.ones_like(temporal)
    sy = np.ones_like(temporal)
    fan_x, fan_y = arch.fanout(fanout_level)
    primes = sorted(((p, d) for d, p in layer_primes(layer)), reverse=True)
    for p, d in primes:
        options = []
        for l in range(levels):
            options.append((xt[l, d] - math.log(temporal[l, d]), "t", l))
        if DIMS[d] in structure.x_dims and sy[fanout_level, d] == 1 and sx[fanout_level].prod() * p <= fan_x:
            options.append((xs[fanout_level, d] - math.log(sx[fanout_level, d]), "x", fanout_level))
        if DIMS[d] in structure.y_dims and sx[fanout_level, d] == 1 and sy[fanout_level].prod() * p <= fan_y:
            options.append((xs[fanout_level, d] - math.log(sy[fanout_level, d]), "y", fanout_level))
        _, kind, l = max(options, key=lambda o: (o[0], o[1] == "t", -o[2]))
        {"t": temporal, "x": sx, "y": sy}[kind][l, d] *= p
    arrays = _single(temporal, sx, sy, structure.structure.order, structure.structure.keep)
    return repair(layer, arch, arrays)


def repair(layer: Layer, arch: Architecture, arrays: MappingArrays) -> MappingArrays:
    """The nearest legal mapping for ``arch``: spatial factors fit their fanout and every tile fits its level."""
    temporal = arrays.temporal[0].copy()
    sx = arrays.spatial_x[0].copy()
    sy = arrays.spatial_y[0].copy()
    order, keep = arrays.order[0], arrays.keep[0]
    levels = len(arch.levels)
    for l in range(levels):
        fan_x, fan_y = arch.fanout(l)
        for spatial, fan in ((sx, fan_x), (sy, fan_y)):
            while spatial[l].prod() > fan:
                d = int(np.argmax(spatial[l]))
                p = max(prime_factors(int(spatial[l, d])))
                spatial[l, d] //= p
                temporal[l, d] *= p
        both = (sx[l] > 1) & (sy[l] > 1)
        temporal[l, both] *= sy[l, both]
        sy[l, both] = 1
    sizes = [lv.size_words for lv in arch.levels]
    while True:
        current = _single(temporal, sx, sy, order, keep)
        used = capacity_used(layer, current)[0]
        over = [l for l in range(levels) if sizes[l] is not None and used[l] > sizes[l]]
        if not over:
            return current
        l = max(over)  # fix the innermost overflow first; its parent absorbs the primes
        if l == 0:
            raise SpecError(f"level {arch.levels[0].name}.size = {sizes[0]}: layer {layer.name} does not fit")
        best = None
        for m in range(l, levels):
            for table in (temporal, sx, sy):
                for d in range(N_DIMS):
                    if table[m, d] == 1:
                        continue
                    p = min(prime_factors(int(table[m, d])))
                    table[m, d] //= p
                    temporal[l - 1, d] *= p
                    after = capacity_used(layer, _single(temporal, sx, sy, order, keep))[0][l]
                    temporal[l - 1, d] //= p
                    table[m, d] *= p
                    if best is None or after < best[0]:
                        best = (after, m, table, d, p)
        if best is None:
            raise SpecError(f"level {arch.levels[l].name}.size = {sizes[l]}: too small for one element of "
                            f"each tensor it keeps (layer {layer.name})")
        _, m, table, d, p = best
        table[m, d] //= p
        temporal[l - 1, d] *= p


def round_solution(problem: RelaxedProblem, x: np.ndarray, hardware: Hardware | None = None):
    """A legal :class:`~search.design.Design` near the relaxed optimum ``x``."""
    hw = hardware or round_hardware(problem, x)
    arch = problem.template.instantiate(hw)
    mappings = []
    v = problem.variables
    for i, entry in enumerate(problem.network.layers):
        mappings.append(round_layer(entry.layer, arch, problem.structures[i], problem.fanout_level,
                                    v.temporal(x, i), v.spatial(x, i)))
    return Design(hw, tuple(mappings))


def fits_template(template: ArchTemplate, hw: Hardware) -> bool:
    sizes = dict(hw.sizes_words)
    return (template.mesh_x_range[0] <= hw.mesh_x <= template.mesh_x_range[1]
            and template.mesh_y_range[0] <= hw.mesh_y <= template.mesh_y_range[1]
            and all(lo <= sizes[name] <= hi for name, lo, hi in template.size_ranges))
