"""Random legal mappings, drawn in batches with NumPy.

:func:`sample_mappings` draws ``n`` mappings of one layer on one architecture as
:class:`~formulation.model.encoding.MappingArrays`, every one of them legal in the sense of
:func:`formulation.model.validation.validate_mapping`:

1. **Factors.** Every loop bound is split into its prime factors (with multiplicity). Each prime
   goes to a slot chosen uniformly at random among ``(level, temporal)`` for every storage level
   and ``(level, spatial X)`` / ``(level, spatial Y)`` for every level whose fanout to its child
   is larger than one along that mesh axis. The primes of all dimensions are placed one by one
   in a random order (drawn per mapping, so no dimension gets first pick of the spatial
   capacity). A prime that would take the product of a level's X (or Y) factors beyond the
   fanout goes to that level's temporal slot instead. A dimension uses at most one mesh axis
   per level: when it ends up on both X and Y at one level, its Y part moves to the level's
   temporal factor.
2. **Loop orders.** A uniformly random permutation per level.
3. **Bypass.** With ``bypass=True`` every level other than the outermost keeps each tensor its
   hardware can hold (``StorageLevel.keeps``) with probability 1/2, and never one it cannot
   hold; the outermost level keeps everything. With ``bypass=False`` every level keeps exactly
   its ``keeps``.
4. **Capacity.** Candidates whose tiles overflow a bounded level
   (:func:`formulation.model.validation.mapping_violations`) are dropped, and new candidates are drawn
   in vectorized rounds (each round sized from the acceptance rate seen so far) until ``n``
   legal ones are found, or :class:`SamplingError` after ``max_rounds`` rounds.

Nothing loops over the mappings in Python: loops run over primes, levels and rounds only. The
result depends only on the arguments and the state of ``rng``, so a seeded generator gives the
same arrays every time.
"""

from __future__ import annotations

import math

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS, TENSORS
from formulation.model.encoding import MappingArrays
from formulation.specs.types import Architecture, Layer
from formulation.model.validation import mapping_violations
from search.tiling import layer_primes

_TEMPORAL, _X, _Y = 0, 1, 2

DEFAULT_MAX_ROUNDS = 64
DEFAULT_MAX_BATCH = 200_000
_MIN_BATCH = 256


class SamplingError(RuntimeError):
    """Raised when too few legal mappings turn up within the allowed number of rounds."""


def _empty(levels: int) -> MappingArrays:
    ints = np.ones((0, levels, N_DIMS), dtype=np.int64)
    return MappingArrays(ints, ints.copy(), ints.copy(), np.zeros((0, levels, N_DIMS), dtype=np.int64),
                         np.zeros((0, levels, N_TENSORS), dtype=bool))


class _Sampler:
    """The fixed part of a draw for one (layer, architecture): slots, primes, capacities, keeps."""

    def __init__(self, layer: Layer, arch: Architecture, bypass: bool) -> None:
        self.levels = levels = len(arch.levels)
        fanouts = [arch.fanout(i) for i in range(levels)]
        slots = [(l, _TEMPORAL) for l in range(levels)]
        slots += [(l, _X) for l, (fx, _) in enumerate(fanouts) if fx > 1]
        slots += [(l, _Y) for l, (_, fy) in enumerate(fanouts) if fy > 1]
        self.slot_level = np.array([s[0] for s in slots], dtype=np.int64)
        self.slot_kind = np.array([s[1] for s in slots], dtype=np.int64)
        self.fan_x = np.array([f[0] for f in fanouts], dtype=np.int64)
        self.fan_y = np.array([f[1] for f in fanouts], dtype=np.int64)
        items = layer_primes(layer)
        self.item_dim = np.array([d for d, _ in items], dtype=np.int64)
        self.item_prime = np.array([p for _, p in items], dtype=np.int64)
        self.keeps = np.array([[t in lv.keeps for t in TENSORS] for lv in arch.levels], dtype=bool)
        self.bypass = bypass

    def draw(self, m: int, rng: np.random.Generator) -> MappingArrays:
        levels = self.levels
        rows = np.arange(m)
        # factors[b, kind, l, d] with kind temporal / spatial X / spatial Y
        factors = np.ones((m, 3, levels, N_DIMS), dtype=np.int64)
        n_items = len(self.item_prime)
        if n_items:
            sequence = rng.random((m, n_items)).argsort(axis=1)
            choice = rng.integers(0, len(self.slot_level), size=(m, n_items))
            used_x = np.ones((m, levels), dtype=np.int64)
            used_y = np.ones((m, levels), dtype=np.int64)
            for k in range(n_items):
                item = sequence[:, k]
                dim = self.item_dim[item]
                prime = self.item_prime[item]
                level = self.slot_level[choice[:, k]]
                kind = self.slot_kind[choice[:, k]]
                over_x = (kind == _X) & (used_x[rows, level] * prime > self.fan_x[level])
                over_y = (kind == _Y) & (used_y[rows, level] * prime > self.fan_y[level])
                kind = np.where(over_x | over_y, _TEMPORAL, kind)
                factors[rows, kind, level, dim] *= prime
                used_x[rows, level] *= np.where(kind == _X, prime, 1)
                used_y[rows, level] *= np.where(kind == _Y, prime, 1)
        temporal, spatial_x, spatial_y = factors[:, _TEMPORAL], factors[:, _X], factors[:, _Y]
        both = (spatial_x > 1) & (spatial_y > 1)
        temporal = np.where(both, temporal * spatial_y, temporal)
        spatial_y = np.where(both, 1, spatial_y)
        order = rng.random((m, levels, N_DIMS)).argsort(axis=-1).astype(np.int64)
        if self.bypass:
            keep = (rng.random((m, levels, N_TENSORS)) < 0.5) & self.keeps[None]
            keep[:, 0] = True
        else:
            keep = np.broadcast_to(self.keeps[None], (m, levels, N_TENSORS)).copy()
        return MappingArrays(np.ascontiguousarray(temporal), np.ascontiguousarray(spatial_x),
                             np.ascontiguousarray(spatial_y), order, keep)


def _concat(parts: list[MappingArrays], n: int) -> MappingArrays:
    return MappingArrays.concat(parts, spatial_order=False).take(slice(0, n))


def sample_mappings(layer: Layer, arch: Architecture, n: int, rng: np.random.Generator, bypass: bool = True, *,
                    max_rounds: int = DEFAULT_MAX_ROUNDS, max_batch: int = DEFAULT_MAX_BATCH) -> MappingArrays:
    """``n`` random legal mappings of ``layer`` on ``arch`` (see the module docstring for the distribution).

    Each round draws a batch of candidates (at least ``n`` in the first round, then as many as the
    acceptance rate so far says are needed, at most ``max_batch``) and keeps those that
    :func:`~formulation.model.validation.mapping_violations` accepts, in draw order. Raises
    :class:`SamplingError` when ``max_rounds`` rounds have not produced ``n`` legal mappings.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n = {n!r}: must be a non-negative integer")
    if max_rounds < 1 or max_batch < 1:
        raise ValueError(f"max_rounds = {max_rounds!r}, max_batch = {max_batch!r}: must be positive")
    sampler = _Sampler(layer, arch, bypass)
    if n == 0:
        return _empty(sampler.levels)
    parts: list[MappingArrays] = []
    found = drawn = 0
    for _ in range(max_rounds):
        missing = n - found
        if drawn == 0:
            m = max(missing, _MIN_BATCH)
        else:
            rate = max(found, 1) / drawn  # optimistic when nothing was found yet: grows geometrically
            m = max(math.ceil(1.2 * missing / rate), _MIN_BATCH)
        m = min(m, max_batch)
        batch = sampler.draw(m, rng)
        ok = ~mapping_violations(layer, arch, batch)
        drawn += m
        if ok.any():
            legal = batch.take(np.flatnonzero(ok))
            parts.append(legal)
            found += legal.size
        if found >= n:
            return _concat(parts, n)
    raise SamplingError(
        f"sample_mappings: found {found} of {n} legal mappings of layer {layer.name} on arch {arch.name} "
        f"in {max_rounds} rounds ({drawn} candidates, bypass={bypass}); most random mappings overflow a buffer "
        f"-- raise max_rounds/max_batch or ask for fewer")


__all__ = ["SamplingError", "sample_mappings"]
