"""The level-order bound of search.mapper.order_energy against brute force."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from formulation.axes import N_DIMS
from formulation.goals import Objective
from formulation.specs.types import Layer
from search.mapper.bounds import BoundModel
from search.mapper.leaves import LeafExpander, Rules, chain_matrix, keep_set_energy
from search.mapper.order_classes import prefix_masks, savings
from search.mapper.space import Space
from tests.mapper_cases import brute_force, brute_force_size, check_search_finds_brute_force_optimum, tiny_arch

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
ALL = np.ones(N_DIMS, dtype=bool)


def _unit_blocks(arch):
    """The architecture with blocks of one word (no rounding of ``n ceil(x / (n B))``)."""
    return dataclasses.replace(arch, levels=tuple(dataclasses.replace(lv, block_size=1) for lv in arch.levels))


@st.composite
def cases(draw, limit: int = 3000, window: bool = True, unit_blocks: bool = False):
    """Tiny layers (with or without sliding windows) on 2- and 3-level architectures."""
    r = draw(st.sampled_from([1, 2, 3])) if window else 1
    layer = Layer("tiny", N=draw(st.sampled_from([1, 2])), K=draw(st.sampled_from([1, 2, 4])),
                  C=draw(st.sampled_from([1, 2, 3])), P=draw(st.sampled_from([1, 2, 3, 4])),
                  Q=draw(st.sampled_from([1, 2])), R=r, S=draw(st.sampled_from([1, 2])) if window else 1,
                  Wstride=draw(st.sampled_from([1, 2])) if window else 1,
                  Wdilation=draw(st.sampled_from([1, 2])) if window else 1)
    arch = tiny_arch(draw(st.sampled_from([2, 3])), draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2)])),
                     glb_words=draw(st.sampled_from([16, 64, 1024])), rf_words=draw(st.sampled_from([4, 8, 64])),
                     glb_bw=draw(st.sampled_from([None, 1.0, 2.0])))
    if unit_blocks:
        arch = _unit_blocks(arch)
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def _per_tiling_and_keep(layer, arch):
    """Every mapping by brute force, and per (tiling, keep set) group: its first mapping, the
    group of each mapping and the least legal energy of each group."""
    energy, _, arrays = brute_force(layer, arch)
    return _groups(energy, arrays)


def _groups(energy, arrays):
    b = len(energy)
    key = np.concatenate([a.reshape(b, -1) for a in (arrays.temporal, arrays.spatial_x, arrays.spatial_y,
                                                     arrays.keep)], axis=1)
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = group.ravel()
    least = np.full(len(first), np.inf)
    np.minimum.at(least, group, energy)
    return energy, arrays, first, group, least


def _order_bound(layer, arch, arrays, rows):
    """The level-order bound of each row's tiling and keep set (least over the orders), pJ."""
    space = Space(layer, arch)
    leaf = LeafExpander(space, Rules())
    t, sx, sy = arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows]
    bounds = BoundModel(layer, arch, space).bounds(t, sx, sy, ALL)
    table = leaf.keep_table.reshape(len(leaf.keep_table), -1)
    k = np.array([np.flatnonzero((table == arrays.keep[r].reshape(-1)).all(axis=1))[0] for r in rows])
    exact = leaf.order_energy.keep_energy(t, sx, sy, bounds.chain_cost)
    return bounds.mac_energy_pJ + exact[np.arange(len(rows)), k], bounds, leaf, k


@settings(max_examples=15, **SETTINGS)
@given(cases())
def test_order_bound_is_below_the_least_energy_over_the_orders(case):
    """Per complete tiling and keep set: at most the least energy over every mapping of them, and
    at least the per-tensor chain bound it refines; the cycles bound at most their fewest cycles."""
    layer, arch = case
    energy, cycles, arrays = brute_force(layer, arch)
    _, arrays, first, group, least = _groups(energy, arrays)
    fewest = np.full(len(first), np.inf)
    np.minimum.at(fewest, group, np.where(np.isfinite(energy), cycles, np.inf))
    ok = np.flatnonzero(np.isfinite(least))
    assume(len(ok))
    ok = np.random.default_rng(0).permutation(ok)[:300]
    bound, bounds, leaf, k = _order_bound(layer, arch, arrays, first[ok])
    chain = np.diagonal(keep_set_energy(bounds, chain_matrix(arrays.keep[first[ok]])))
    assert (bound <= least[ok] * (1 + 1e-9)).all()
    assert (bound >= chain * (1 - 1e-6)).all()
    rows = first[ok]
    _, keep_cycles, _ = leaf.keep_bounds(arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows], bounds)
    assert (keep_cycles[np.arange(len(ok)), k] <= fewest[ok]).all()


@settings(max_examples=12, **SETTINGS)
@given(cases(window=False, unit_blocks=True))
def test_order_bound_is_exact_without_a_window(case):
    """Without a sliding window (every count exact) and with one-word blocks (no rounding), the
    bound is the least energy over the orders, for every tiling and keep set."""
    layer, arch = case
    _, arrays, first, _, least = _per_tiling_and_keep(layer, arch)
    ok = np.flatnonzero(np.isfinite(least))
    assume(len(ok))
    ok = np.random.default_rng(1).permutation(ok)[:300]
    bound, _, _, _ = _order_bound(layer, arch, arrays, first[ok])
    np.testing.assert_allclose(bound, least[ok], rtol=1e-7)


@settings(max_examples=15, **SETTINGS)
@given(cases())
def test_each_order_combination_bounds_its_mappings(case):
    """The bounds of one keep set with one order per level (what expand_tiling cuts) are below the
    energy and the cycles of every mapping with that tiling, keep set and those orders (any
    spatial order)."""
    layer, arch = case
    energy, cycles, arrays = brute_force(layer, arch)
    rows = np.flatnonzero(np.isfinite(energy))
    assume(len(rows))
    rows = np.random.default_rng(2).permutation(rows)[:400]
    space = Space(layer, arch)
    leaf = LeafExpander(space, Rules())
    t, sx, sy = arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows]
    bounds = BoundModel(layer, arch, space).bounds(t, sx, sy, ALL)
    windowed = leaf.order_energy.bm.windowed
    levels = []
    for m in range(space.levels - 1):
        per_row = [savings(arrays.temporal[r, m][None], prefix_masks(
            arrays.order[r, m][None], tuple(np.flatnonzero(arrays.temporal[r, m] > 1)), windowed)) for r in rows]
        levels.append((np.concatenate([a for a, _ in per_row]), np.concatenate([i for _, i in per_row])))
    oe = leaf.order_energy
    fixed, per_level, words, words_level = oe.pair_costs(t, sx, sy, bounds.chain_cost, levels)
    table = leaf.keep_table.reshape(len(leaf.keep_table), -1)
    k = np.array([np.flatnonzero((table == arrays.keep[r].reshape(-1)).all(axis=1))[0] for r in rows])
    i, every = np.arange(len(rows)), np.arange(len(table))
    total = oe._per_keep(fixed, every)[i, k] + sum(oe._per_keep(c, every)[i, k, 0] for c in per_level)
    assert (bounds.mac_energy_pJ + total <= energy[rows] * (1 + 1e-9)).all()
    channels = [oe._per_keep(oe._channel(words, lv, kind), every)[i, k]
                + sum(oe._per_keep(oe._channel(w, lv, kind), every)[i, k, 0] for w in words_level)
                for lv, kind, _ in oe.channels()]
    assert (oe.cycles(bounds.cycles, channels) <= cycles[rows]).all()


def test_order_bound_charges_the_conflict_between_tensors():
    """All loops at the outer level of a pointwise layer: each tensor alone can put its own
    irrelevant loops innermost, not all at once; the order bound is tighter than the per-tensor one."""
    layer = Layer("pw", N=1, C=4, K=4, P=4, Q=1, R=1, S=1)
    arch = _unit_blocks(tiny_arch(3, (1, 1), glb_words=1024, rf_words=4))
    _, arrays, first, _, least = _per_tiling_and_keep(layer, arch)
    outer = arrays.temporal[first, 0].prod(axis=1) == np.prod(layer.dims)
    rows = np.flatnonzero(np.isfinite(least) & outer)
    assert len(rows)
    bound, bounds, _, _ = _order_bound(layer, arch, arrays, first[rows])
    chain = np.diagonal(keep_set_energy(bounds, chain_matrix(arrays.keep[first[rows]])))
    np.testing.assert_allclose(bound, least[rows], rtol=1e-7)
    assert (bound > chain * 1.01).any()


@settings(max_examples=6, **SETTINGS)
@given(cases(limit=2500), st.sampled_from([Objective.ENERGY, Objective.EDP]))
def test_search_with_the_order_bound_finds_the_brute_force_optimum(case, objective):
    check_search_finds_brute_force_optimum(*case, objective)
