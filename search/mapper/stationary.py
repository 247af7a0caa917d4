"""Seeds for windowed layers: a weight block and an input window stationary in each PE.

On a large mesh with small register files the mapper's first incumbents (random samples, one-prime
descent, whole-array spreads: :mod:`search.mapper.seed`) miss a dataflow that is near the lower
bound for 3x3 convolutions: one mesh axis carries a channel dimension ``a`` (K or C) times a whole
filter dimension ``w`` (R or S), the other axis the other channel dimension ``b``; each PE's
register file (the storage level right below the only fanout) holds the other filter dimension
``w'`` whole times ``r`` of ``a``, so it keeps an ``r x w'`` block of weights and a ``w'``-word input
window (``r x w'`` inputs when ``a`` is C), and the outputs bypass it (reduced over ``b w`` PEs into
the parent). Measured (exact model, ResNet-18, 49x64 PEs, GlobalBuffer 108 Ki words, RegisterFile
16 words): ``layer1_3x3`` 190.4 uJ in 37,632 cycles against the co-design's 204.2 uJ in 39,648,
``layer2_3x3`` 193.2 uJ against 210.8 uJ in the same 47,232 cycles; the network's EDP 6.99e6 ->
6.75e6 pJ s from these two layers alone.

The loops above the register file are what decides the buffer's and DRAM's traffic; they are
drawn at random here (each remaining prime factor of a dimension goes to a level drawn uniformly,
every level's loop order is a random permutation, the levels between the outermost and the
fanout keep a random subset of the tensors), and the mapper's seeding scores them with the exact
model and descends the best (:func:`search.mapper.seed.seed_incumbent`). Everything here is only a
candidate: illegal ones (a buffer overflows, a level may not keep a tensor) are dropped by
:func:`formulation.model.validation.mapping_violations`, so nothing needs to be optimal or legal.

**Window families** (:func:`window_candidates`), for any architecture with one fanout level, also
when each PE holds a chain of scratchpads (``eyeriss-like``: ``psum_spad``, ``weights_spad``,
``ifmap_spad``, each for one tensor, where :func:`families` does not apply). The mesh carries a
whole-array spatial assignment (:func:`search.mapper.spread.full_spreads`) that leaves one filter
dimension ``w'`` off it; only three dimensions may have loops inside the PE: ``w'``, the output
dimension it slides along (Q for S, P for R) and one channel dimension (K or C). Their prime factors
go to a level drawn uniformly from all levels, every other dimension's to a level at or above the
fanout (with probability :data:`WHOLE_SHARE` a dimension's remaining factor goes whole to one
level drawn); loop orders are random permutations and every level below the outermost keeps each
tensor it can hold with probability 1/2. This contains the row-stationary-like dataflows (a block of
weights of one channel and the whole ``w'`` kept in the PE and reused along the sliding output
dimension, the ``w'``-word input window shifting along it) that fill ``eyeriss-like`` with
ResNet-18's 3x3 layers, and which neither uniform samples nor one-prime descents reach reliably.
Measured (EDP, eight seeds, 60,000 window samples over up to 64 whole-array assignments, the 32 best
descended, about 0.4 s): ``layer1_3x3`` 4.166-4.186e5 pJ·s, seven of eight at most 4.168e5 (the best
mapping known is 4.166e5; 2,000 uniform samples descended: 4.342e5, the last network run's seed
4.326e5), ``layer2_3x3`` 4.080-4.089e5 (best known 4.080e5), ``layer2_3x3_s2`` 1.119e5 in all eight
(best known 1.119e5). With every prime drawn on its own and 16 descents, two of the eight stayed at
4.30-4.34e5 on ``layer1_3x3`` and ``layer2_3x3_s2`` reached 1.119e5 in six.
"""

from __future__ import annotations

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS, Dim, Tensor
from formulation.factors import divisors, prime_factors
from formulation.model.encoding import MappingArrays
from formulation.model.validation import mapping_violations
from formulation.specs.types import Architecture, Layer
from search.mapper.spread import fanout_level, full_spreads

#: The output dimension a filter dimension slides along (window families).
SLIDES = {Dim.R: Dim.P, Dim.S: Dim.Q}
#: Share of window-family draws in which a dimension's remaining factor goes whole to one level
#: (otherwise each prime to a level of its own): the best mappings known keep a whole channel block
#: in one scratchpad (ResNet-18's layer2_3x3_s2 on ``eyeriss-like``: K 64 in ``ifmap_spad``, P 28 at
#: ``psum_spad``), which prime-by-prime draws reach with a probability of about 5^-9.
WHOLE_SHARE = 0.5
#: Register-file blocks ``r`` tried per family: the largest that fit the register file.
BLOCKS = 2
#: Window pairs: (filter dimension carried by the mesh, the one kept whole in the register file).
WINDOWS = ((Dim.R, Dim.S), (Dim.S, Dim.R))
CHANNELS = ((Dim.K, Dim.C), (Dim.C, Dim.K))


def _largest_divisor(n: int, cap: int) -> int:
    return max((d for d in divisors(n) if d <= cap), default=1)


def families(layer: Layer, arch: Architecture) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(level, x[7], y[7], rf[7], rf_order[7])``: the spatial factors at the fanout ``level``, the
    register file's temporal factors and loop order (``w'`` innermost, then ``a``) of every family (module docstring) that fits the mesh, without duplicates.

    ``r`` runs over the :data:`BLOCKS` largest divisors of what is left of ``a`` whose block fits the
    register file's size (``r w'`` weights plus ``w'`` inputs, or ``r w'`` inputs when ``a`` is C).
    Empty when the architecture has not exactly one fanout level with the innermost storage level right
    below it, or the layer has no filter dimension longer than 1.
    """
    level = fanout_level(arch)
    if level is None or level != len(arch.levels) - 2:
        return []
    size = arch.levels[-1].size_words
    fan_x, fan_y = arch.fanout(level)
    dims = [int(v) for v in layer.dims]
    out, seen = [], set()
    for w, kept in WINDOWS:
        if dims[w] < 2:
            continue
        for a, b in CHANNELS:
            for fan_a, fan_b, a_on_x in ((fan_x, fan_y, True), (fan_y, fan_x, False)):
                if dims[w] > fan_a:
                    continue
                f_a = _largest_divisor(dims[a], fan_a // dims[w])
                f_b = _largest_divisor(dims[b], fan_b)
                along_a = np.ones(N_DIMS, dtype=np.int64)
                along_a[a], along_a[w] = f_a, dims[w]
                along_b = np.ones(N_DIMS, dtype=np.int64)
                along_b[b] = f_b
                x, y = (along_a, along_b) if a_on_x else (along_b, along_a)
                words = [r for r in divisors(dims[a] // f_a)
                         if size is None or r * dims[kept] + (dims[kept] if a == Dim.K else r * dims[kept]) <= size]
                for r in sorted(words)[-BLOCKS:]:
                    rf = np.ones(N_DIMS, dtype=np.int64)
                    rf[kept], rf[a] = dims[kept], r
                    key = (x.tobytes(), y.tobytes(), rf.tobytes())
                    if key not in seen:
                        seen.add(key)
                        rest = [d for d in range(N_DIMS) if d not in (kept, a)]
                        out.append((level, x, y, rf, np.array([kept, a] + rest, dtype=np.int64)))
    return out


def _draw(layer: Layer, arch: Architecture, level: int, x: np.ndarray, y: np.ndarray, rf: np.ndarray,
          rf_order: np.ndarray, n: int, rng: np.random.Generator) -> MappingArrays:
    """``n`` random completions of one family: the loops above the register file (module docstring)."""
    levels = len(arch.levels)
    inner = levels - 1
    t = np.ones((n, levels, N_DIMS), dtype=np.int64)
    t[:, inner] = rf
    sx = np.ones((n, levels, N_DIMS), dtype=np.int64)
    sy = np.ones((n, levels, N_DIMS), dtype=np.int64)
    sx[:, level], sy[:, level] = x, y
    for d in range(N_DIMS):
        left = int(layer.dims[d]) // int(x[d] * y[d] * rf[d])
        for p in prime_factors(left):
            where = rng.integers(0, inner, size=n)  # a level above the register file
            t[np.arange(n), where, d] *= p
    order = np.empty((n, levels, N_DIMS), dtype=np.int64)
    for l in range(inner):
        order[:, l] = rng.permuted(np.tile(np.arange(N_DIMS), (n, 1)), axis=1)
    order[:, inner] = rf_order
    keep = rng.random((n, levels, N_TENSORS)) < 0.5
    keep[:, 0] = True
    keep[:, inner] = False
    keep[:, inner, Tensor.W] = keep[:, inner, Tensor.I] = True
    return MappingArrays(t, sx, sy, order, keep, None)


def stationary_candidates(layer: Layer, arch: Architecture, samples: int,
                          rng: np.random.Generator) -> MappingArrays | None:
    """About ``samples`` legal random mappings spread evenly over the layer's :func:`families`, or None."""
    fams = families(layer, arch)
    if not fams or samples <= 0:
        return None
    each = max(1, samples // len(fams))
    parts = []
    for level, x, y, rf, rf_order in fams:
        drawn = _draw(layer, arch, level, x, y, rf, rf_order, each, rng)
        ok = np.flatnonzero(~mapping_violations(layer, arch, drawn))
        if len(ok):
            parts.append(drawn.take(ok))
    return MappingArrays.concat(parts, spatial_order=False) if parts else None


def window_families(layer: Layer, arch: Architecture, spreads: int,
                    rng: np.random.Generator) -> list[tuple[int, np.ndarray, np.ndarray, frozenset[int]]]:
    """``(level, x[7], y[7], inner)``: up to ``spreads`` whole-array assignments at the fanout ``level``
    (drawn with ``rng``) times the choices of a filter dimension ``w'`` off the mesh and a channel
    dimension, with ``inner`` the dimensions that may have loops below the fanout (module docstring,
    "Window families"). Empty without exactly one fanout level, with no level below it, or when no
    filter dimension is longer than 1."""
    level, found = full_spreads(layer, arch, rng, spreads)
    if level is None or level == len(arch.levels) - 1:
        return []
    out = []
    for x, y in found:
        for kept, slide in SLIDES.items():
            if layer.dims[kept] < 2 or x[kept] * y[kept] > 1:
                continue
            out += [(level, x, y, frozenset({int(kept), int(slide), int(ch)})) for ch in (Dim.K, Dim.C)]
    return out


def _draw_window(layer: Layer, arch: Architecture, level: int, x: np.ndarray, y: np.ndarray, inner: frozenset[int],
                 n: int, rng: np.random.Generator) -> MappingArrays:
    """``n`` random mappings of one window family (module docstring, "Window families")."""
    levels = len(arch.levels)
    t = np.ones((n, levels, N_DIMS), dtype=np.int64)
    sx = np.ones((n, levels, N_DIMS), dtype=np.int64)
    sy = np.ones((n, levels, N_DIMS), dtype=np.int64)
    sx[:, level], sy[:, level] = x, y
    rows = np.arange(n)
    for d in range(N_DIMS):
        top = levels if d in inner else level + 1
        whole = rng.random(n) < WHOLE_SHARE  # all of the dimension's loops at one level drawn
        at = rng.integers(0, top, size=n)
        for p in prime_factors(int(layer.dims[d]) // int(x[d] * y[d])):
            t[rows, np.where(whole, at, rng.integers(0, top, size=n)), d] *= p
    order = rng.random((n, levels, N_DIMS)).argsort(axis=-1).astype(np.int64)
    can = np.array([[t_ in lv.keeps for t_ in Tensor] for lv in arch.levels], dtype=bool)
    keep = (rng.random((n, levels, N_TENSORS)) < 0.5) & can[None]
    keep[:, 0] = True
    return MappingArrays(t, sx, sy, order, keep)


def window_candidates(layer: Layer, arch: Architecture, samples: int, spreads: int,
                      rng: np.random.Generator) -> MappingArrays | None:
    """About ``samples`` random mappings spread evenly over the layer's :func:`window_families` (over
    ``spreads`` whole-array assignments), the legal ones only; None when there are none."""
    fams = window_families(layer, arch, spreads, rng) if samples > 0 else []
    if not fams:
        return None
    each = max(1, samples // len(fams))
    parts = []
    for level, x, y, inner in fams:
        drawn = _draw_window(layer, arch, level, x, y, inner, each, rng)
        ok = np.flatnonzero(~mapping_violations(layer, arch, drawn))
        if len(ok):
            parts.append(drawn.take(ok))
    return MappingArrays.concat(parts, spatial_order=False) if parts else None


__all__ = ["families", "stationary_candidates", "window_candidates", "window_families"]
