"""Exact searches with the spatial factors fixed (search.mapper.spatial) against brute force on tiny cases."""

from __future__ import annotations

import functools
import math
import pickle
import time

import numpy as np
import pytest

from formulation.goals import Objective
from formulation.specs.types import Layer
from search.mapper import map_layer
from search.mapper.leaves import Rules
from search.mapper.tree import _Incumbent, _Search
from search.mapper.objective import objective_of
from search.mapper.space import Space
from search.mapper.spatial import MAX_SPREADS, FixedSpatialSpace, SpatialQueue
from search.mapper.spread import full_spreads
from tests.mapper_cases import brute_force, tiny_arch

LAYER = Layer("tiny", N=1, K=4, C=2, P=3, Q=2, R=2, S=1)
ARCH = tiny_arch(3, (2, 2), glb_words=64, rf_words=8)


@functools.cache
def _brute_force():
    """Every mapping of LAYER on ARCH scored (1.4M mappings, about 20 s: computed once per test process)."""
    return brute_force(LAYER, ARCH)


def _with_assignment(arrays, level: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which brute-force mappings have spatial factors ``x``/``y`` at ``level`` and none elsewhere."""
    sx, sy = arrays.spatial_x, arrays.spatial_y
    others = np.delete(sx * sy, level, axis=1)
    return (sx[:, level] == x).all(axis=1) & (sy[:, level] == y).all(axis=1) & (others == 1).all(axis=(1, 2))


@pytest.mark.parametrize("objective", [Objective.ENERGY, Objective.EDP])
def test_a_fixed_spatial_search_finds_the_best_mapping_with_that_assignment(objective):
    energy, cycles, arrays = _brute_force()
    values = np.where(np.isfinite(energy), objective_of(objective, energy, cycles, ARCH.clock_GHz), np.inf)
    level, spreads = full_spreads(LAYER, ARCH, np.random.default_rng(0), 100)
    assert spreads
    whole = Space(LAYER, ARCH)
    for x, y in spreads:
        mask = _with_assignment(arrays, level, x, y)
        sub = _Search(LAYER, ARCH, objective, Rules(symmetry=False), math.inf, math.inf,
                      space=FixedSpatialSpace(whole, level, x, y))
        assert not sub.run()
        best = values[mask].min()
        assert sub.inc.value == pytest.approx(best, rel=1e-9)
        chosen = sub.inc.arrays
        assert (chosen.spatial_x[0, level] == x).all() and (chosen.spatial_y[0, level] == y).all()


def test_one_spatial_queue_run_offers_the_best_whole_array_mapping_to_the_incumbent():
    energy, cycles, arrays = _brute_force()
    values = np.where(np.isfinite(energy), objective_of(Objective.EDP, energy, cycles, ARCH.clock_GHz), np.inf)
    level, spreads = full_spreads(LAYER, ARCH, np.random.default_rng(0), 100)
    inside = np.zeros(len(values), dtype=bool)
    for x, y in spreads:
        inside |= _with_assignment(arrays, level, x, y)
    inc = _Incumbent(Objective.EDP, ARCH.clock_GHz)
    scored = SpatialQueue().run(lambda space: _Search(LAYER, ARCH, Objective.EDP, Rules(symmetry=False), math.inf,
                                                      math.inf, space=space), Space(LAYER, ARCH), inc, math.inf)
    assert scored > 0
    assert inc.value == pytest.approx(values[inside].min(), rel=1e-9)


def test_map_layer_with_spatial_searches_keeps_a_valid_certificate():
    energy, cycles, _ = _brute_force()
    values = np.where(np.isfinite(energy), objective_of(Objective.EDP, energy, cycles, ARCH.clock_GHz), np.inf)
    result = map_layer(LAYER, ARCH, Objective.EDP, time_limit_s=5.0, seed_samples=4)
    cert = result.certificate
    assert cert.lower_bound <= values.min() * (1 + 1e-9) <= cert.best * (1 + 1e-9)
    if cert.optimal:
        assert cert.best == pytest.approx(values.min(), rel=1e-9)


def test_a_spatial_queue_run_in_pickled_slices_finds_what_one_run_finds():
    """The queue given its time in short slices, pickled between them as a parked search carries it, ends
    with the best mapping of every whole-array subspace, as one uninterrupted run does."""
    energy, cycles, arrays = _brute_force()
    values = np.where(np.isfinite(energy), objective_of(Objective.EDP, energy, cycles, ARCH.clock_GHz), np.inf)
    level, spreads = full_spreads(LAYER, ARCH, np.random.default_rng(0), MAX_SPREADS)
    inside = np.zeros(len(values), dtype=bool)
    for x, y in spreads:
        inside |= _with_assignment(arrays, level, x, y)
    whole = Space(LAYER, ARCH)
    inc = _Incumbent(Objective.EDP, ARCH.clock_GHz)
    queue, slices, scored = SpatialQueue(), 0, 0
    while not queue.done and slices < 10_000:
        queue = pickle.loads(pickle.dumps(queue))
        scored += queue.run(lambda space: _Search(LAYER, ARCH, Objective.EDP, Rules(symmetry=False), 0.0, 0.0,
                                                  space=space), whole, inc, time.monotonic() + 0.02)
        slices += 1
    assert queue.done and scored > 0
    assert inc.value == pytest.approx(values[inside].min(), rel=1e-9)
    assert SpatialQueue.empty().done
