"""The forced-refetch (capacity) and confinement bounds and the per-keep-set cycles of partial tilings
(search.mapper.capacity, search.mapper.confinement, search.mapper.partial_orders) against brute
force on a shrunk eyeriss-like."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import search.mapper.capacity as capacity
import search.mapper.confinement as confinement
import search.mapper.partial_orders as partial_orders
from formulation.axes import N_DIMS, Dim
from formulation.goals import Objective
from formulation.specs.types import Layer
from search.mapper import map_layer
from search.mapper.bounds import BoundModel
from search.mapper.capacity import capacity_energy
from search.mapper.confinement import confinement_energy
from search.mapper.leaves import LeafExpander, Rules
from search.mapper.partial_orders import partial_order_bounds
from search.mapper.space import Space
from tests.mapper_cases import (brute_force, brute_force_optimum, brute_force_size, check_search_finds_brute_force_optimum,
                                tiny_eyeriss)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def eyeriss_cases(draw, limit: int = 40_000):
    """Small GEMMs and 1-D convolutions on the shrunk eyeriss-like, buffers small enough to force."""
    layer = Layer("tiny", N=1, C=draw(st.sampled_from([1, 2, 4])), K=draw(st.sampled_from([1, 2, 4])),
                  P=draw(st.sampled_from([2, 4])), Q=1, R=draw(st.sampled_from([1, 1, 2])),
                  Wstride=draw(st.sampled_from([1, 2])))
    arch = tiny_eyeriss(mesh=draw(st.sampled_from([(2, 1), (1, 2)])), glb_words=draw(st.sampled_from([4, 6, 8, 16])),
                        glb_bw=draw(st.sampled_from([None, 1.0, 2.0])), weights_words=draw(st.sampled_from([2, 4])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


@st.composite
def windowed_cases(draw, limit: int = 40_000):
    """Small 1-D convolutions (a sliding window, sometimes a batch) on the shrunk eyeriss-like."""
    layer = Layer("tiny-conv", N=draw(st.sampled_from([1, 2])), C=draw(st.sampled_from([1, 2])),
                  K=draw(st.sampled_from([1, 2])), P=draw(st.sampled_from([2, 4])), Q=1,
                  R=draw(st.sampled_from([2, 3])), Wstride=draw(st.sampled_from([1, 2])))
    arch = tiny_eyeriss(mesh=draw(st.sampled_from([(2, 1), (1, 2)])), glb_words=draw(st.sampled_from([4, 6, 8])),
                        psum_words=draw(st.sampled_from([2, 4])), ifmap_words=draw(st.sampled_from([2, 3])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def _bounds(layer, arch, arrays, free, capacity=True, confinement=True, deadline=None):
    """Per mapping of ``arrays``: its partial tiling's capacity and confinement energies for its own
    keep combination (``None`` where the rule applies nowhere), the partial-order energy, cycles and
    EDP bounds (``deadline`` passed on), and the plain cycles bound (computed once per distinct
    partial tiling)."""
    t, sx, sy = arrays.temporal.copy(), arrays.spatial_x.copy(), arrays.spatial_y.copy()
    t[:, :, free], sx[:, :, free], sy[:, :, free] = 1, 1, 1
    b = len(t)
    key = np.concatenate([a.reshape(b, -1) for a in (t, sx, sy)], axis=1)
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = group.ravel()
    space = Space(layer, arch)
    bm = BoundModel(layer, arch, space)
    oe = LeafExpander(space, Rules(), bm).order_energy
    bounds = bm.bounds(t[first], sx[first], sy[first], ~free)
    args = (oe, t[first], sx[first], sy[first], bounds.chain_cost, free, bounds.mac_energy_pJ)
    forced = capacity_energy(*args, np.arange(len(oe.keep_table)))
    confined = confinement_energy(*args, np.arange(len(oe.keep_table)))
    with patch.object(partial_orders, "CAPACITY_REFETCH", capacity), \
            patch.object(partial_orders, "CONFINEMENT", confinement):
        e, c, d = partial_order_bounds(*args, cycles=bounds.cycles, with_cycles=True, deadline=deadline)
    own = (arrays.keep[:, None] == oe.keep_table[None]).all(axis=(2, 3)).argmax(axis=1)
    per_keep = [None if x is None else x[group, own] for x in (forced, confined)]
    return per_keep, (e[group], c[group], d[group]), bounds.cycles[group]


def bounds_with_and_without(layer, arch, free_dims, module, flag: str):
    """Every mapping of ``layer`` on ``arch`` (brute force) and its partial tiling (``free_dims`` free):
    ``(energy, cycles, ok)`` of the mappings, the partial-order energy and EDP bounds ``(e, d)`` with
    ``module.flag`` on and ``(e_old, d_old)`` with it off; the caller asserts the rise and that both
    stay below ``energy`` and ``energy * cycles`` where ``ok``."""
    energy, cycles, arrays = brute_force(layer, arch)
    free = np.zeros(N_DIMS, dtype=bool)
    free[list(free_dims)] = True
    _, (e, _, d), _ = _bounds(layer, arch, arrays, free)
    with patch.object(module, flag, False):
        _, (e_old, _, d_old), _ = _bounds(layer, arch, arrays, free)
    return (energy, cycles, np.isfinite(energy)), (e, d), (e_old, d_old)


@settings(max_examples=12, **SETTINGS)
@given(eyeriss_cases(), st.data())
def test_capacity_and_cycles_bounds_are_below_every_completion(case, data):
    """Per keep combination, the forced-refetch and the confinement energies are at most the energy of
    every legal mapping with that keep combination completing the partial tiling; the partial tiling's energy, cycles
    and EDP bounds are at most every legal completion's."""
    _check_below_completions(*case, data)


def _check_below_completions(layer, arch, data) -> None:
    """Free dimensions drawn at random: every per-keep-combination energy and the energy, cycles and EDP
    bounds of the partial tiling are at most those of every legal completion (brute force)."""
    energy, cycles, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    assume(ok.any())
    free = ~np.array(data.draw(st.lists(st.booleans(), min_size=N_DIMS, max_size=N_DIMS)))
    per_keep, (e, c, d), _ = _bounds(layer, arch, arrays, free)
    tol = 1 + 1e-9
    for own in per_keep:
        if own is not None:
            assert (own[ok] <= energy[ok] * tol).all()
    assert (e[ok] <= energy[ok] * tol).all()
    assert (c[ok] <= cycles[ok] * tol).all()
    assert (d[ok] <= energy[ok] * cycles[ok] * tol).all()


@settings(max_examples=8, **SETTINGS)
@given(windowed_cases(), st.data())
def test_buffer_bounds_of_windowed_layers_are_below_every_completion(case, data):
    """The capacity (with its joint term) and confinement energies per keep combination, and the partial
    tilings' energy, cycles and EDP bounds, of convolutions with a sliding window and free dimensions
    drawn at random, are at most those of every legal completion."""
    with patch.object(capacity, "JOINT_WINDOWED", True):  # the joint term too, whatever the default
        _check_below_completions(*case, data)


def test_joint_capacity_raises_a_partial_tiling_and_stays_below_every_completion():
    """With N and P free on a convolution whose Outputs fit the 2-word psum scratchpad with N or P whole
    below it but not both, the joint term (capacity.joint_factors, on for windowed layers too)
    forces their loops above it and raises some partial tilings' energy bound, still below every
    completion's. (No GEMM small enough for brute force was found where it binds; on ResNet-18's
    layer2_downsample it does, benchmarks/README.md.)"""
    layer = Layer("conv", N=2, C=1, K=1, P=4, Q=1, R=2)
    arch = tiny_eyeriss(glb_words=4)
    energy, _, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    free = np.zeros(N_DIMS, dtype=bool)
    free[[Dim.N, Dim.P]] = True
    with patch.object(capacity, "JOINT_WINDOWED", True):
        (forced, _), (e, _, _), _ = _bounds(layer, arch, arrays, free)
        with patch.object(capacity, "JOINT_CAPACITY", False):
            _, (e_old, _, _), _ = _bounds(layer, arch, arrays, free)
    assert forced is not None and (forced[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (e[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (e > e_old * 1.01).any()


#: The two buffer terms, each on a GEMM where it binds (term, layer, architecture, free dimension):
#: "capacity": the Outputs fill the global buffer once K sits below it, so P cannot all go below it and
#: the part above refetches the Weights (which bypass it) from DRAM; "confinement": with C free and the
#: inputs kept in a 2-word scratchpad some C loops sit above it, and either the inputs pay the K loop of
#: DRAM or those loops, all in DRAM, refetch the Outputs.
BUFFER_TERMS = {
    "capacity": (Layer("gemm", N=1, C=2, K=2, P=4, Q=1), dict(glb_words=4), Dim.P),
    "confinement": (Layer("gemm", N=1, C=4, K=2, P=4, Q=1), dict(glb_words=8, ifmap_words=2), Dim.C),
}


@pytest.mark.parametrize("term", sorted(BUFFER_TERMS))
def test_a_buffer_term_raises_some_partial_tilings_and_stays_below_every_completion(term):
    layer, arch_options, dim = BUFFER_TERMS[term]
    arch = tiny_eyeriss(**arch_options)
    energy, _, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    free = np.zeros(N_DIMS, dtype=bool)
    free[dim] = True
    (forced, confined), (e, _, _), _ = _bounds(layer, arch, arrays, free)
    _, (e_old, _, _), _ = _bounds(layer, arch, arrays, free, **{term: False})
    own = forced if term == "capacity" else confined
    assert own is not None
    assert (own[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (e[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (e > e_old * 1.01).any()


def test_confinement_counts_the_loops_the_global_buffer_forces_into_dram():
    """With C and P free, the Weights confined to a 2-word scratchpad (C loops above it) and the
    Outputs kept in a 4-word global buffer with K below it (P loops above it, in DRAM): case A of the
    confinement rule counts those P loops of DRAM (``confinement.FORCED_TOP``), which raises some keep
    combinations' energy, still below every completion with that keep combination."""
    layer, arch = Layer("gemm", N=1, C=4, K=2, P=4, Q=1), tiny_eyeriss(glb_words=4, weights_words=2)
    energy, _, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    free = np.zeros(N_DIMS, dtype=bool)
    free[[Dim.C, Dim.P]] = True
    (_, confined), _, _ = _bounds(layer, arch, arrays, free)
    with patch.object(confinement, "FORCED_TOP", False):
        (_, confined_old), _, _ = _bounds(layer, arch, arrays, free)
    assert confined is not None and (confined[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (confined > confined_old * 1.01).any()


def test_a_throttled_global_buffer_raises_the_cycles_of_partial_tilings():
    """With a one-word-per-cycle global buffer, some partial tilings' every keep combination moves more
    words through it than the compute cycles: the cycles bound rises, still below every completion."""
    layer = Layer("gemm", N=1, C=2, K=2, P=4, Q=1)
    arch = tiny_eyeriss(glb_words=16, glb_bw=1.0)
    energy, cycles, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    free = np.zeros(N_DIMS, dtype=bool)
    free[Dim.C] = True
    _, (_, c, _), base = _bounds(layer, arch, arrays, free)
    assert (c[ok] <= cycles[ok] * (1 + 1e-9)).all()
    assert (c > base * 1.01).any()


@settings(max_examples=4, **SETTINGS)
@given(eyeriss_cases(limit=20_000), st.sampled_from([Objective.ENERGY, Objective.LATENCY, Objective.EDP]))
def test_search_on_the_shrunk_eyeriss_finds_the_brute_force_optimum(case, objective):
    check_search_finds_brute_force_optimum(*case, objective)


@pytest.mark.parametrize("objective", [Objective.ENERGY, Objective.EDP])
def test_search_on_a_forcing_case_finds_the_brute_force_optimum(objective):
    layer, arch = Layer("gemm", N=1, C=2, K=2, P=4, Q=1), tiny_eyeriss(glb_words=4)
    best = brute_force_optimum(layer, arch, objective)
    result = map_layer(layer, arch, objective, seed_samples=0)
    assert result.certificate.optimal
    assert abs(result.certificate.best - best) <= 1e-8 * best


def test_keep_combinations_priced_per_split_raise_the_bound():
    """On a 2x2 array with K and P free, pricing each keep combination per split of the free fanout
    (partial_orders._split_keep_bounds) raises the EDP bound of some partial tilings, still below
    every completion's."""
    layer = Layer("gemm", N=1, C=4, K=2, P=2, Q=1)
    arch = tiny_eyeriss(mesh=(2, 2), glb_words=16)
    (energy, cycles, ok), (_, d), (_, d_old) = bounds_with_and_without(layer, arch, [Dim.C], partial_orders,
                                                                       "SPLIT_KEEPS")
    assert (d[ok] <= energy[ok] * cycles[ok] * (1 + 1e-9)).all()
    assert (d > d_old * 1.01).any()
