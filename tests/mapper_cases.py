"""Tiny layers and architectures for the exact mapper's tests, and a brute-force reference.

The brute force enumerates every tiling, every permutation of each level's active loops (a loop
of bound 1 takes no part in the model; ``test_mapper`` checks that separately), every spatial
order and every keep combination, with no pruning, and scores them all with the exact model.
"""

from __future__ import annotations

import itertools

import numpy as np

from formulation.axes import DIMS, TENSORS, Tensor
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.specs.types import Architecture, Layer, Mac, StorageLevel, Technology
from search.mapper.space import Space


def tiny_arch(levels: int = 3, mesh: tuple[int, int] = (2, 2), glb_words: int = 64, rf_words: int = 8,
              glb_bw: float | None = None, keeps_rf=None) -> Architecture:
    """DRAM -> GlobalBuffer (-> PEs of RegisterFiles when ``levels == 3``) -> MACs, meshes ``mesh``."""
    mx, my = mesh
    pe = mx * my
    lv = [StorageLevel("DRAM", Technology.DRAM, None, 8, 4, 1, 1, 200.0, 200.0, 200.0, 200.0, 4.0, 4.0)]
    if levels == 3:
        lv.append(StorageLevel("GlobalBuffer", Technology.SRAM, glb_words, 8, 2, 1, 1, 6.0, 7.0, 7.0, 7.5,
                               glb_bw, glb_bw))
        keeps = frozenset(TENSORS) if keeps_rf is None else frozenset(keeps_rf)
        lv.append(StorageLevel("RegisterFile", Technology.SRAM, rf_words, 8, 1, pe, mx, 0.5, 0.6, 0.6, 0.7,
                               keeps=keeps))
    else:
        lv.append(StorageLevel("GlobalBuffer", Technology.SRAM, glb_words, 8, 2, pe, mx, 6.0, 7.0, 7.0, 7.5,
                               glb_bw, glb_bw))
    return Architecture("tiny", tuple(lv), Mac(pe, mx, 1.0))


def tiny_eyeriss(mesh: tuple[int, int] = (2, 1), glb_words: int = 8, glb_bw: float | None = 1.0,
                 psum_words: int = 2, weights_words: int = 4, ifmap_words: int = 2) -> Architecture:
    """``eyeriss-like`` shrunk: DRAM -> GlobalBuffer (Inputs and Outputs only, one instance, throttled)
    -> PEs of psum (Outputs) -> weights (Weights) -> ifmap (Inputs) scratchpads -> MACs."""
    mx, my = mesh
    pe = mx * my
    lv = (StorageLevel("DRAM", Technology.DRAM, None, 8, 4, 1, 1, 200.0, 200.0, 200.0, 200.0, 2.0, 2.0),
          StorageLevel("GlobalBuffer", Technology.SRAM, glb_words, 8, 2, 1, 1, 6.0, 7.0, 7.0, 7.5, glb_bw, glb_bw,
                       keeps=frozenset({Tensor.I, Tensor.O})),
          StorageLevel("psum", Technology.SRAM, psum_words, 8, 1, pe, mx, 0.9, 1.0, 1.0, 1.1,
                       keeps=frozenset({Tensor.O})),
          StorageLevel("weights", Technology.SRAM, weights_words, 8, 1, pe, mx, 1.4, 1.5, 1.5, 1.5,
                       keeps=frozenset({Tensor.W})),
          StorageLevel("ifmap", Technology.SRAM, ifmap_words, 8, 1, pe, mx, 0.5, 0.55, 0.55, 0.55,
                       keeps=frozenset({Tensor.I})))
    return Architecture("tiny-eyeriss", lv, Mac(pe, mx, 1.0))


def _tilings(space: Space):
    """Every tiling ``(temporal, x, y)`` (levels x dims factor arrays) whose spatial factors fit the fanouts."""
    opts = space.options
    for choice in itertools.product(*[range(o.count) for o in opts]):
        t = np.stack([opts[d].temporal[choice[d]] for d in DIMS], axis=1)
        x = np.stack([opts[d].x[choice[d]] for d in DIMS], axis=1)
        y = np.stack([opts[d].y[choice[d]] for d in DIMS], axis=1)
        if (x.prod(axis=1) > space.fan_x).any() or (y.prod(axis=1) > space.fan_y).any():
            continue
        yield t, x, y


def brute_force(layer: Layer, arch: Architecture) -> tuple[np.ndarray, np.ndarray, MappingArrays]:
    """Energy, cycles (inf/0 where a mapping overflows) and the arrays of every mapping (see the module docstring)."""
    space = Space(layer, arch)
    L = space.levels
    rows = []
    keep_combos = list(itertools.product(*space.keep_options))
    for t, x, y in _tilings(space):
        per_level = []
        for l in range(L):
            active = [int(d) for d in DIMS if t[l, d] > 1]
            rest = [int(d) for d in DIMS if t[l, d] == 1]
            per_level.append([tuple(p) + tuple(rest) for p in itertools.permutations(active)])
        sps = []
        for l in range(L):
            xd = [int(d) for d in DIMS if x[l, d] > 1]
            yd = [int(d) for d in DIMS if y[l, d] > 1]
            rest = [int(d) for d in DIMS if x[l, d] == 1 and y[l, d] == 1]
            sps.append([tuple(px) + tuple(py) + tuple(rest) for px in itertools.permutations(xd)
                        for py in itertools.permutations(yd)])
        for orders in itertools.product(*per_level):
            for sp in itertools.product(*sps):
                for keeps in keep_combos:
                    rows.append((t, x, y, np.array(orders), np.array(sp),
                                 np.array([[tt in ks for tt in TENSORS] for ks in keeps])))
    arrays = MappingArrays(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
                           np.stack([r[2] for r in rows]), np.stack([r[3] for r in rows]).astype(np.int64),
                           np.stack([r[5] for r in rows]), np.stack([r[4] for r in rows]).astype(np.int64))
    ev = evaluate_batch(layer, arch, arrays)
    energy = np.where(ev.fits, ev.energy_pJ, np.inf)
    return energy, ev.cycles, arrays


def keep_set_bounds_of_mappings(layer: Layer, arch: Architecture, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(energy, bound) of up to ``rows`` legal mappings drawn from the brute force (seed 0): each mapping's
    exact energy and the per-keep-set bound of its complete tiling at its own keep set
    (:func:`search.mapper.leaves.keep_set_energy`); the case is skipped (``assume``) with no legal mapping."""
    from hypothesis import assume

    from formulation.axes import N_DIMS
    from search.mapper.bounds import BoundModel
    from search.mapper.leaves import chain_matrix, keep_set_energy

    energy, _, arrays = brute_force(layer, arch)
    legal = np.flatnonzero(np.isfinite(energy))
    assume(len(legal))
    legal = np.random.default_rng(0).permutation(legal)[:rows]
    b = BoundModel(layer, arch).bounds(arrays.temporal[legal], arrays.spatial_x[legal], arrays.spatial_y[legal],
                                       np.ones(N_DIMS, dtype=bool))
    per_keep = keep_set_energy(b, chain_matrix(arrays.keep[legal]))   # [b, K]: row i with its own keep set i
    return energy[legal], np.diagonal(per_keep)


def brute_force_optimum(layer: Layer, arch: Architecture, objective) -> float:
    """The least ``objective`` value over every legal mapping (``inf`` when none fits)."""
    from search.mapper.objective import objective_of

    energy, cycles, _ = brute_force(layer, arch)
    values = np.where(np.isfinite(energy), objective_of(objective, energy, cycles, arch.clock_GHz), np.inf)
    return float(values.min())


def check_search_finds_brute_force_optimum(layer: Layer, arch: Architecture, objective) -> None:
    """The mapper with every rule on, unseeded, proves the brute-force optimum (cases with no legal
    mapping are rejected through ``hypothesis.assume``)."""
    from hypothesis import assume

    from search.mapper import map_layer

    best = brute_force_optimum(layer, arch, objective)
    assume(np.isfinite(best))
    result = map_layer(layer, arch, objective, seed_samples=0)
    assert result.certificate.optimal
    assert abs(result.certificate.best - best) <= 1e-8 * best


__all__ = ["tiny_arch", "tiny_eyeriss", "brute_force", "brute_force_optimum", "brute_force_size",
           "check_search_finds_brute_force_optimum"]


def brute_force_size(layer: Layer, arch: Architecture, stop_above: int | None = None) -> int:
    """How many mappings :func:`brute_force` would score (to keep test cases small); with ``stop_above``
    the count stops as soon as it exceeds that (a number above it is returned: the case is too large)."""
    import math
    space = Space(layer, arch)
    total = 0
    for t, x, y in _tilings(space):
        total += (math.prod(math.factorial(int((t[l] > 1).sum())) * math.factorial(int((x[l] > 1).sum()))
                            * math.factorial(int((y[l] > 1).sum())) for l in range(space.levels)))
        if stop_above is not None and total * space.keep_combinations > stop_above:
            break
    return total * space.keep_combinations
