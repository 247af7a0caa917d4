"""Whole-array spatial seeds of the exact mapper (search.mapper.spread) against enumeration."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from formulation.axes import N_DIMS
from formulation.bound.layer_terms import utilization_table
from formulation.model.validation import mapping_violations
from formulation.specs.types import Layer
from search.mapper.spread import full_spreads, transplant
from search.sampling import sample_mappings
from tests.mapper_cases import tiny_arch

layers = st.builds(Layer, st.just("tiny"), N=st.sampled_from([1, 2]), K=st.sampled_from([1, 2, 3, 4, 6, 8]),
                   C=st.sampled_from([1, 2, 3, 5, 8]), P=st.sampled_from([1, 2, 4, 7]),
                   Q=st.sampled_from([1, 3, 4]), R=st.sampled_from([1, 3]), S=st.sampled_from([1, 2]))
meshes = st.sampled_from([(2, 2), (4, 2), (3, 4), (8, 4), (6, 6)])


@settings(max_examples=40, deadline=None)
@given(layers, meshes, st.integers(0, 2**16))
def test_spreads_fill_the_array_as_far_as_any_assignment_can(layer, mesh, seed):
    arch = tiny_arch(3, mesh, glb_words=1 << 20, rf_words=1 << 12)
    level, spreads = full_spreads(layer, arch, np.random.default_rng(seed), 5)
    assert level == 1 and spreads
    best = utilization_table(layer.dims, *mesh)[mesh[0], mesh[1]]  # the most PEs any assignment uses
    for x, y in spreads:
        assert int(np.prod(x) * np.prod(y)) == best
        assert np.prod(x) <= mesh[0] and np.prod(y) <= mesh[1]
        assert not ((x > 1) & (y > 1)).any()
        assert all(layer.dims[d] % (x[d] * y[d]) == 0 for d in range(N_DIMS))


@settings(max_examples=40, deadline=None)
@given(layers, meshes, st.integers(0, 2**16))
def test_a_transplant_keeps_every_dimension_whole_and_the_new_spread(layer, mesh, seed):
    arch = tiny_arch(3, mesh, glb_words=1 << 20, rf_words=1 << 12)
    rng = np.random.default_rng(seed)
    level, spreads = full_spreads(layer, arch, rng, 3)
    base = sample_mappings(layer, arch, 1, rng)
    for x, y in spreads:
        cand = transplant(layer, base, level, x, y)
        assert (cand.spatial_x[0, level] == x).all() and (cand.spatial_y[0, level] == y).all()
        total = cand.temporal[0].prod(axis=0) * cand.spatial_x[0].prod(axis=0) * cand.spatial_y[0].prod(axis=0)
        assert (total == np.array(layer.dims)).all()
        assert (cand.order == base.order).all() and (cand.keep == base.keep).all()
        assert not mapping_violations(layer, arch, cand).any()  # buffers this large hold any tile
