"""The level-order bound of partial tilings (search.mapper.partial_orders) and the inert last level
(Rule 3 of search.mapper.orders) against brute force."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formulation.axes import N_DIMS, Dim
from formulation.goals import Objective
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.specs.types import Layer
from search.mapper.bounds import BoundModel
from search.mapper.leaves import LeafExpander, Rules
from search.mapper.partial_orders import partial_order_energy
from search.mapper.space import Space
from search.sampling import sample_mappings
from tests.mapper_cases import brute_force, check_search_finds_brute_force_optimum, tiny_arch
from tests.test_mapper_bounds import partial_tilings, windowed_cases
from tests.test_mapper_order_energy import _unit_blocks, cases

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
OBJECTIVES = [Objective.ENERGY, Objective.LATENCY, Objective.EDP]


def _partial_bounds(layer, arch, tilings, assigned):
    """The old bound and the partial level-order bound of each row's partial tiling, pJ, ``[b]`` each
    (computed once per distinct partial tiling)."""
    t, sx, sy = tilings
    b = len(t)
    key = np.concatenate([a.reshape(b, -1) for a in (t, sx, sy)], axis=1)
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    space = Space(layer, arch)
    bm = BoundModel(layer, arch, space)
    leaf = LeafExpander(space, Rules(), bm)
    bounds = bm.bounds(t[first], sx[first], sy[first], assigned)
    order = partial_order_energy(leaf.order_energy, t[first], sx[first], sy[first], bounds.chain_cost,
                                 ~assigned, bounds.mac_energy_pJ)
    group = group.ravel()
    return bounds.energy_pJ[group], order[group]


@settings(max_examples=20, **SETTINGS)
@given(st.one_of(windowed_cases(), cases(limit=4000)), st.data())
def test_partial_order_bound_is_below_every_completion(case, data):
    """For a drawn set of free dimensions, the bound of each partial tiling is at most the energy of
    every legal mapping completing it (with and without sliding windows)."""
    layer, arch = case
    energy, _, ok, assigned, tilings, _ = partial_tilings(layer, arch, data)
    _, order = _partial_bounds(layer, arch, tilings, assigned)
    assert (order[ok] <= energy[ok] * (1 + 1e-9)).all()


def test_partial_order_bound_charges_the_conflict_between_tensors():
    """A pointwise layer with P free and C and K looping at the outer level: the Weights want P or
    K innermost there, the Outputs C; the joint bound is above the per-tensor one and still below
    every completion."""
    layer = Layer("pw", N=1, C=4, K=4, P=2, Q=1, R=1, S=1)
    arch = _unit_blocks(tiny_arch(3, (1, 1), glb_words=1024, rf_words=4))
    energy, _, arrays = brute_force(layer, arch)
    p = int(Dim.P)
    assigned = np.ones(N_DIMS, dtype=bool)
    assigned[p] = False
    t, sx, sy = arrays.temporal.copy(), arrays.spatial_x.copy(), arrays.spatial_y.copy()
    t[:, :, p], sx[:, :, p], sy[:, :, p] = 1, 1, 1
    old, order = _partial_bounds(layer, arch, (t, sx, sy), assigned)
    ok = np.isfinite(energy)
    assert (order[ok] <= energy[ok] * (1 + 1e-9)).all()
    outer = (t[:, 0].prod(axis=1) == layer.C * layer.K) & ok
    assert outer.any()
    assert (order[outer] > old[outer] * 1.01).any()


@settings(max_examples=5, **SETTINGS)
@given(windowed_cases(limit=2500), st.sampled_from(OBJECTIVES))
def test_search_with_the_partial_order_bound_finds_the_brute_force_optimum(case, objective):
    check_search_finds_brute_force_optimum(*case, objective)


@pytest.mark.parametrize("arch_name", ["simple", "eyeriss-like", "tiny"])
def test_the_last_levels_order_changes_no_count(arch_name):
    """Rule 3 of search.mapper.orders: with no fanout into the MACs, any permutation of the last
    storage level gives the same counts (random mappings of a strided 3x3 conv, links on)."""
    from formulation.specs.catalog import load_arch

    arch = tiny_arch(3, (2, 2), glb_words=4096, rf_words=64) if arch_name == "tiny" else load_arch(arch_name)
    layer = Layer("conv_s2", N=2, C=4, K=8, P=4, Q=4, R=3, S=3, Wstride=2, Hstride=2)
    assert LeafExpander(Space(layer, arch), Rules()).last_order_inert
    rng = np.random.default_rng(3)
    arrays = sample_mappings(layer, arch, 400, rng)
    order = arrays.order.copy()
    for i in range(arrays.size):
        order[i, -1] = rng.permutation(order[i, -1])
    assert (order != arrays.order).any()
    moved = MappingArrays(arrays.temporal, arrays.spatial_x, arrays.spatial_y, order, arrays.keep,
                          arrays.spatial_order)
    a, b = evaluate_batch(layer, arch, arrays), evaluate_batch(layer, arch, moved)
    for name in ("reads", "fills", "updates", "cycles", "energy_pJ"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_the_last_level_keeps_its_orders_with_a_fanout_into_the_macs():
    """Links at a fanout into the MACs read the last level's loops: Rule 3 is off there."""
    arch = tiny_arch(2, (4, 4), glb_words=4096)
    arch = dataclasses.replace(arch, levels=(arch.levels[0], dataclasses.replace(arch.levels[1], instances=1,
                                                                                  mesh_x=1)))
    layer = Layer("conv", N=1, C=2, K=2, P=4, Q=1, R=3, S=1)
    space = Space(layer, arch)
    assert space.fan_x[-1] * space.fan_y[-1] == 16
    assert not LeafExpander(space, Rules()).last_order_inert
